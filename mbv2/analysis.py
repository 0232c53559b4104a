"""Per-layer shapes, parameters and multiply-adds of an `ArchSpec`, counted by fvcore.

fvcore counts one fused multiply-add as one flop. Two conventions come from one trace:
- "paper": convolutions and the classifier only, as the MobileNetV2 paper and TF-slim
  count them (300.8M for 1.0/224);
- "fvcore": everything fvcore counts by default, BatchNorm and pooling too (314.2M).
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

import torch
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # fvcore's import touches the deprecated torch.jit.script
    from fvcore.nn import FlopCountAnalysis

from mbv2.budget import PROCESS_BUDGET
from mbv2.cost import traced_bytes
from mbv2.model import InvertedResidual, MobileNetV2, build_model
from mbv2.hooks import temporary_hooks
from mbv2.spec import ArchSpec, BlockPlan

Convention = Literal["paper", "fvcore"]
CONVENTIONS: dict[Convention, str] = {
    "paper": "Paper convention: convolutions + classifier (BatchNorm and pooling not counted)",
    "fvcore": "fvcore default: everything fvcore counts, BatchNorm and pooling included",
}
PAPER_OPERATORS = frozenset({"conv", "linear", "addmm", "matmul"})
LAYER_KINDS = ("stem", "expand", "depthwise", "project", "last conv", "pool", "classifier")


@dataclass(frozen=True)
class LayerRow:
    kind: str  # one of LAYER_KINDS
    stage: int  # row of the bottleneck table; 0 for the stem, len(table) + 1 for the head
    block: int | None  # index of the block in `model.features`, None for pool and classifier
    plan: BlockPlan | None  # the inverted residual block the layer is part of; None for the stem and the head
    module: str  # where the layer lives in the model, e.g. "features.2.conv.0"
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    madds_paper: int
    madds_fvcore: int

    def madds(self, convention: Convention) -> int:
        return self.madds_paper if convention == "paper" else self.madds_fvcore


@dataclass(frozen=True)
class Analysis:
    spec: ArchSpec
    rows: tuple[LayerRow, ...]

    @property
    def params(self) -> int:
        return sum(row.params for row in self.rows)

    def madds(self, convention: Convention) -> int:
        return sum(row.madds(convention) for row in self.rows)


@lru_cache(maxsize=128)
def analyse(spec: ArchSpec) -> Analysis:
    """Shapes, params and MAdds of every layer; cached, since an `ArchSpec` is immutable.

    fvcore's trace keeps every intermediate, so the pass waits for its share of the process's budget.
    """
    with PROCESS_BUDGET.reserve(traced_bytes(spec)):
        return analyse_model(build_model(spec, initialise=False))  # counting reads shapes, never values


def analyse_model(model: MobileNetV2) -> Analysis:
    spec = model.spec
    layers = _measured_layers(model)
    example = torch.zeros(1, 3, spec.resolution, spec.resolution)
    shapes = _shapes(model, example, {part for layer in layers for part in layer.parts} | {"features"})
    by_module = _count(model, example)

    rows = []
    for layer in layers:
        parts = layer.parts
        counts = sum((by_module[part] for part in parts), Counter())
        rows.append(
            LayerRow(
                kind=layer.kind,
                stage=layer.stage,
                block=layer.block,
                plan=layer.plan,
                module=" + ".join(parts),
                input_shape=shapes[f"{parts[0]}:in"],
                output_shape=shapes[f"{parts[-1]}:out"],
                params=sum(p.numel() for part in parts for p in model.get_submodule(part).parameters()),
                madds_paper=sum(n for op, n in counts.items() if op in PAPER_OPERATORS),
                madds_fvcore=sum(counts.values()),
            )
        )
    head_stage = len(spec.stages) + 1
    pooled = shapes["features:out"][:2]
    # The pooling is a functional call in forward(), so fvcore books it on the root module.
    pool_counts = by_module[""] - by_module["features"] - by_module["classifier"]
    pool = LayerRow(
        kind="pool",
        stage=head_stage,
        block=None,
        plan=None,
        module="adaptive_avg_pool2d",
        input_shape=shapes["features:out"],
        output_shape=pooled,
        params=0,
        madds_paper=sum(n for op, n in pool_counts.items() if op in PAPER_OPERATORS),
        madds_fvcore=sum(pool_counts.values()),
    )
    rows.insert(len(rows) - 1, pool)
    return Analysis(spec=spec, rows=tuple(rows))


class _MeasuredLayer(NamedTuple):
    kind: str
    stage: int
    block: int | None
    plan: BlockPlan | None
    parts: tuple[str, ...]  # module names in the model, in order


def _measured_layers(model: MobileNetV2) -> list[_MeasuredLayer]:
    """Every row but the pool, in order; a block's layers are its parts, one row per role."""
    last = len(model.features) - 1
    layers = [_MeasuredLayer("stem", 0, 0, None, ("features.0",))]
    for index, block in enumerate(model.features):
        if not isinstance(block, InvertedResidual):
            continue
        for role, names in block.parts.items():
            parts = tuple(f"features.{index}.{name}" for name in names)
            layers.append(_MeasuredLayer(role, block.plan.stage, index, block.plan, parts))
    head_stage = len(model.spec.stages) + 1
    layers.append(_MeasuredLayer("last conv", head_stage, last, None, (f"features.{last}",)))
    layers.append(_MeasuredLayer("classifier", head_stage, None, None, ("classifier",)))
    return layers


@torch.inference_mode()
def _shapes(model: nn.Module, example: torch.Tensor, names: set[str]) -> dict[str, tuple[int, ...]]:
    """Input and output shape of each named module, keyed "name:in" and "name:out".

    A plain forward pass of its own: read inside fvcore's jit trace, every size is traced too,
    which took longer than the whole pass.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def keep_shapes(name: str):
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            shapes[f"{name}:in"] = tuple(inputs[0].shape)
            shapes[f"{name}:out"] = tuple(output.shape)

        return hook

    with temporary_hooks(
        [module.register_forward_hook(keep_shapes(name)) for name, module in model.named_modules() if name in names]
    ):
        model(example)
    return shapes


def _count(model: nn.Module, example: torch.Tensor) -> dict[str, Counter]:
    """fvcore's per-module, per-operator counts, with its warnings and logs kept quiet."""
    counter = FlopCountAnalysis(model, example)
    counter.unsupported_ops_warnings(False)  # residual adds and TF padding: no multiply-adds
    counter.uncalled_modules_warnings(False)
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the jit tracer's deprecation and tracer warnings
            counts = counter.by_module_and_operator()
    finally:
        logger.setLevel(level)
    return {name: Counter(ops) for name, ops in counts.items()}


def paper_bottleneck_madds(height: int, width: int, d_in: int, d_out: int, t: int, kernel: int = 3) -> int:
    """The paper's closed form h·w·d'·t·(d' + k² + d''), exact for stride 1 and t > 1."""
    return height * width * d_in * t * (d_in + kernel**2 + d_out)
