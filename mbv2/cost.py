"""What a configuration will cost before anything runs: multiply-adds and working memory, from the plan alone.

The estimates are calibrated against measured peak memory (VmHWM growth) on this project's
CPU build of torch, and err on the high side:
- a plain forward pass in inference mode keeps a few feature maps alive per image (a layer's
  input and output, the padded copy, the block input held for the residual add, the
  allocator's slack): measured 2.5-5.5 times the largest map, so FORWARD_LIVE_MAPS = 6;
- a traced pass (fvcore's counting in `mbv2.analysis`, TorchScript's `torch.jit.trace`) holds
  every intermediate until it ends: the convolution, its BatchNorm, padded copies and the
  tracer's own records, measured 3.1-3.7 times the sum of the layers' outputs, so TRACE_COPIES = 4.

`mbv2.spec` refuses an architecture whose single-image cost is above the limits here, so every
entry point that builds one (the analysis, latency, export, sweep, the weights' own model) is
covered; `check_batch` adds the batch for latency measurements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mbv2.errors import ResourceError

if TYPE_CHECKING:  # spec.py calls into this module while it validates, so no import at run time
    from mbv2.spec import ArchSpec, BlockPlan

FLOAT32_BYTES = 4
FORWARD_LIVE_MAPS = 6
TRACE_COPIES = 4
# One request: above this, a 24 GiB server shared by a class runs out after a handful of visitors.
MAX_WORKING_BYTES = 4 * 2**30
# One image through the network: 12 G for width 1.4 at 1024; about 3 s per image on one core here.
MAX_MADDS = 25_000_000_000


def gibibytes(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


def bottleneck_madds(plan: BlockPlan, in_side: int, kernel: int = 3) -> int:
    """The paper's closed form h·w·d'·t·(d' + k² + d''), generalised: no expansion when t = 1,
    and stride 2 shrinks the last two terms."""
    out_side = -(-in_side // plan.stride)
    hidden = plan.hidden_channels
    expand = in_side**2 * plan.in_channels * hidden if plan.has_expansion else 0
    return expand + out_side**2 * hidden * (kernel**2 + plan.out_channels)


def madds(spec: ArchSpec) -> int:
    """Multiply-adds of one image in the paper's convention (convolutions and classifier)."""
    sides = spec.feature_sizes()
    total = sides[0] ** 2 * spec.stem_out * 3 * 9
    total += sum(bottleneck_madds(plan, side) for plan, side in zip(spec.block_plans, sides))
    total += sides[-1] ** 2 * spec.block_plans[-1].out_channels * spec.last_out
    return total + spec.last_out * spec.num_classes


def largest_feature_map(spec: ArchSpec) -> int:
    """Values in the largest single feature map of one image (the expansions run at a block's input size)."""
    sides = spec.feature_sizes()
    return max(
        [sides[0] ** 2 * spec.stem_out]
        + [side**2 * plan.hidden_channels for plan, side in zip(spec.block_plans, sides)]
    )


def _layer_outputs(spec: ArchSpec) -> int:
    """Values in every layer's output of one image, summed: what a trace keeps."""
    sides = spec.feature_sizes()
    total = sides[0] ** 2 * spec.stem_out + sides[-1] ** 2 * spec.last_out
    for plan, in_side, out_side in zip(spec.block_plans, sides, sides[1:]):
        expanded = in_side**2 * plan.hidden_channels if plan.has_expansion else 0
        total += expanded + out_side**2 * (plan.hidden_channels + plan.out_channels)
    return total


def traced_bytes(spec: ArchSpec) -> int:
    """Peak memory of one traced pass (the analysis, a TorchScript or ONNX export)."""
    return TRACE_COPIES * FLOAT32_BYTES * _layer_outputs(spec)


def forward_bytes(spec: ArchSpec, batch_size: int = 1) -> int:
    """Peak memory of feature maps in one plain forward pass of `batch_size` images."""
    return FORWARD_LIVE_MAPS * FLOAT32_BYTES * largest_feature_map(spec) * batch_size


def spec_problems(spec: ArchSpec) -> list[str]:
    """The single-image limits, as messages naming the estimate, the limit and what to lower."""
    problems = []
    work = madds(spec)
    if work > MAX_MADDS:
        problems.append(
            f"One image would take about {work / 1e9:,.1f} billion multiply-adds; the limit is "
            f"{MAX_MADDS / 1e9:.0f} billion (the paper's 1.0/224 takes 0.3). Lower the resolution, n, c or t."
        )
    memory = max(traced_bytes(spec), forward_bytes(spec))
    if memory > MAX_WORKING_BYTES:
        problems.append(
            f"Counting this network's layers would hold about {gibibytes(memory)} of feature maps; the limit is "
            f"{gibibytes(MAX_WORKING_BYTES)}. Lower the resolution, n or t of the rows that run at high resolution."
        )
    return problems


def largest_batch(spec: ArchSpec) -> int:
    """The most images one forward pass of `spec` may take within MAX_WORKING_BYTES (at least one)."""
    return max(1, MAX_WORKING_BYTES // forward_bytes(spec))


def check_batch(spec: ArchSpec, batch_size: int) -> None:
    """Refuse a batch whose forward pass would need more than MAX_WORKING_BYTES."""
    needed = forward_bytes(spec, batch_size)
    if needed > MAX_WORKING_BYTES:
        raise ResourceError(
            f"A batch of {batch_size} images of this design would need about {gibibytes(needed)} of feature maps; "
            f"the limit is {gibibytes(MAX_WORKING_BYTES)}. Use a batch of at most {largest_batch(spec)}, "
            "or a lower resolution."
        )
