"""Peak activation memory of one forward pass, from the shapes `mbv2.analysis` recorded.

What the number means: the layers run one after another on one image; while a layer runs,
its input and its output exist, and inside a residual block the block's input is also kept
until the final add (which itself holds the input, the projection and the sum). BatchNorm
is folded into the convolutions and ReLU6 works in place, as in a deployed model. Weights
are not counted. The paper's §5 trick of computing the expanded tensor in slices would lower
the peak; this is the plain layer-by-layer execution that PyTorch and TF-Lite do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mbv2.analysis import Analysis

FLOAT32_BYTES = 4


@dataclass(frozen=True)
class ActivationPeak:
    bytes: int
    layer: str  # the module (or residual add) at which the peak is reached
    bytes_per_value: int

    @property
    def mebibytes(self) -> float:
        return self.bytes / 2**20


def peak_activation(analysis: Analysis, bytes_per_value: int = FLOAT32_BYTES) -> ActivationPeak:
    """The largest total of simultaneously live feature maps, batch 1 (see the module docstring)."""
    held_for_add: dict[int, int] = {}  # residual block -> size of its input
    candidates: list[tuple[int, str]] = []
    for row in analysis.rows:
        inputs, outputs = math.prod(row.input_shape), math.prod(row.output_shape)
        block = row.block
        if block is None or row.plan is None or not row.plan.has_residual:
            candidates.append((inputs + outputs, row.module))
            continue
        if block not in held_for_add:  # the block's first layer reads the block's input itself
            held_for_add[block] = inputs
            candidates.append((inputs + outputs, row.module))
            continue
        candidates.append((inputs + outputs + held_for_add[block], row.module))
        if row.kind == "project":
            candidates.append((held_for_add[block] + 2 * outputs, f"features.{block} (residual add)"))
    values, layer = max(candidates, key=lambda candidate: candidate[0])
    return ActivationPeak(bytes=values * bytes_per_value, layer=layer, bytes_per_value=bytes_per_value)
