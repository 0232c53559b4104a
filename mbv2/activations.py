"""What flows through an inverted residual block, captured with forward hooks.

Three jobs, all on an existing `MobileNetV2` (nothing here copies or rebuilds the model):
- `capture_block`: the five tensors of one block (input, expansion and depthwise outputs
  after ReLU6, the linear projection, the residual sum);
- `block_statistics` / `stage_statistics`: how much each ReLU6 zeroes and clips, and how
  much of the projection output is negative, i.e. what a ReLU there would destroy;
- `nonlinear_bottleneck`: the paper's ablation, ReLU6 after every projection, added by
  hooks and removed on exit, so the state_dict is never touched.

Hooks live on the model while a call runs: a model shared between threads needs a lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from mbv2.hooks import temporary_hooks
from mbv2.model import InvertedResidual, MobileNetV2
from mbv2.spec import BlockPlan

RELU6_CEILING = 6.0
# What each of a block's parts makes, by its role (`InvertedResidual.parts`): the names used below.
_OUTPUT_OF_ROLE = {"expand": "expanded", "depthwise": "depthwise", "project": "projected"}


def inverted_residuals(model: MobileNetV2) -> dict[int, InvertedResidual]:
    """The bottleneck blocks by their index in `model.features` (as in `mbv2.analysis` rows)."""
    return {index: block for index, block in enumerate(model.features) if isinstance(block, InvertedResidual)}


@dataclass(frozen=True)
class BlockActivations:
    """One block's tensors for a batch, each (N, C, H, W)."""

    index: int
    plan: BlockPlan
    block_input: torch.Tensor
    expanded: torch.Tensor | None  # after ReLU6; None when t = 1 (no expansion layer)
    depthwise: torch.Tensor  # after ReLU6
    projected: torch.Tensor  # the linear bottleneck: no activation
    output: torch.Tensor  # block_input + projected where the block has a residual, else projected

    @property
    def residual_sum(self) -> torch.Tensor | None:
        return self.output if self.plan.has_residual else None


@torch.inference_mode()
def capture_block(model: MobileNetV2, batch: torch.Tensor, index: int) -> BlockActivations:
    """Run `batch` through `model` and keep what block `features[index]` sees and makes."""
    block = inverted_residuals(model).get(index)
    if block is None:
        raise ValueError(f"features[{index}] is not an inverted residual block")
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            # clone: the next ReLU6 in the network works in place
            seen[name] = output.detach().clone()
            if name == "output":
                seen["block_input"] = inputs[0].detach().clone()

        return hook

    watched = {**_outputs_of_parts(block), "output": block}
    with temporary_hooks([module.register_forward_hook(keep(name)) for name, module in watched.items()]):
        model(batch)
    return BlockActivations(index=index, plan=block.plan, expanded=seen.get("expanded"), **{
        name: seen[name] for name in ("block_input", "depthwise", "projected", "output")
    })


def most_active_channels(activation: torch.Tensor, count: int) -> list[int]:
    """Channels of a (C, H, W) map with the largest mean absolute value, most active first."""
    strength = activation.abs().flatten(1).mean(dim=1)
    return strength.topk(min(count, strength.numel())).indices.tolist()


@dataclass(frozen=True)
class ActivationCounts:
    """Counts over one tensor (or, summed, over several); the shares are fractions in [0, 1]."""

    total: int = 0
    zeros: int = 0
    clipped: int = 0  # at the ReLU6 ceiling
    negative: int = 0
    energy: float = 0.0  # sum of squares
    negative_energy: float = 0.0  # sum of squares of the negative values

    @classmethod
    def of(cls, tensor: torch.Tensor) -> ActivationCounts:
        values = tensor.detach().double()
        negatives = values.clamp(max=0)
        return cls(
            total=values.numel(),
            zeros=int((values == 0).sum()),
            clipped=int((values >= RELU6_CEILING).sum()),
            negative=int((values < 0).sum()),
            energy=float(values.square().sum()),
            negative_energy=float(negatives.square().sum()),
        )

    def __add__(self, other: ActivationCounts) -> ActivationCounts:
        return ActivationCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def zero_share(self) -> float | None:
        return _share(self.zeros, self.total)

    @property
    def clipped_share(self) -> float | None:
        return _share(self.clipped, self.total)

    @property
    def negative_share(self) -> float | None:
        return _share(self.negative, self.total)

    @property
    def negative_energy_share(self) -> float | None:
        return _share(self.negative_energy, self.energy)


def _share(part: float, whole: float) -> float | None:
    """None where there is nothing to divide (a block without expansion, an all-zero map)."""
    return part / whole if whole else None


@dataclass(frozen=True)
class BlockStatistics:
    index: int
    plan: BlockPlan
    expanded: ActivationCounts  # empty (total 0) when the block has no expansion
    depthwise: ActivationCounts
    projected: ActivationCounts


@dataclass(frozen=True)
class StageStatistics:
    """Counts summed over the blocks of one row of the paper's Table 2."""

    stage: int
    blocks: int
    expanded: ActivationCounts
    depthwise: ActivationCounts
    projected: ActivationCounts


@torch.inference_mode()
def block_statistics(model: MobileNetV2, batch: torch.Tensor) -> tuple[BlockStatistics, ...]:
    """Counts for every block in one forward pass (only counts are kept, never the tensors)."""
    counts: dict[tuple[int, str], ActivationCounts] = {}

    def count(index: int, name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            counts[index, name] = ActivationCounts.of(output)

        return hook

    blocks = inverted_residuals(model)
    handles = []
    for index, block in blocks.items():
        handles += [
            module.register_forward_hook(count(index, name)) for name, module in _outputs_of_parts(block).items()
        ]
    with temporary_hooks(handles):
        model(batch)
    return tuple(
        BlockStatistics(
            index=index,
            plan=block.plan,
            expanded=counts.get((index, "expanded"), ActivationCounts()),
            depthwise=counts[index, "depthwise"],
            projected=counts[index, "projected"],
        )
        for index, block in blocks.items()
    )


def _outputs_of_parts(block: InvertedResidual) -> dict[str, nn.Module]:
    """The module that makes each of the block's tensors, by the tensor's name ("expanded" only when t > 1)."""
    return {_OUTPUT_OF_ROLE[role]: block.part(role) for role in block.parts}


def stage_statistics(blocks: tuple[BlockStatistics, ...]) -> tuple[StageStatistics, ...]:
    """Per-block counts summed per stage, in stage order."""
    stages: dict[int, StageStatistics] = {}
    for block in blocks:
        stage = block.plan.stage
        empty = ActivationCounts()
        so_far = stages.get(stage, StageStatistics(stage, 0, empty, empty, empty))
        stages[stage] = StageStatistics(
            stage=stage,
            blocks=so_far.blocks + 1,
            expanded=so_far.expanded + block.expanded,
            depthwise=so_far.depthwise + block.depthwise,
            projected=so_far.projected + block.projected,
        )
    return tuple(stages[stage] for stage in sorted(stages))


def _relu6_output(_module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return F.relu6(output)  # not in place: the hook's return value replaces the output


@contextmanager
def nonlinear_bottleneck(model: MobileNetV2) -> Iterator[MobileNetV2]:
    """Within the block, every projection is followed by ReLU6: the paper's ablation of
    linear bottlenecks. Same weights, same state_dict; the model is linear again on exit."""
    blocks = inverted_residuals(model).values()
    with temporary_hooks([block.project.register_forward_hook(_relu6_output) for block in blocks]):
        yield model


@contextmanager
def same_damage_elsewhere(model: MobileNetV2, seed: int = 0) -> Iterator[MobileNetV2]:
    """The ablation's control: in every block, as many values destroyed as a ReLU6 after the projection
    would zero there (its negatives), but in the wide tensor the projection reads, at random among its
    non-zero values. The same blocks lose the same number of values; only where differs.

    If this hurts as much as the ReLU6 in the bottleneck, any damage of that size breaks the trained
    weights; if it hurts far less, it is the narrow bottleneck's negative half that matters.
    """
    generator = torch.Generator().manual_seed(seed)

    def destroy_as_many(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        wide = inputs[0]
        would_zero = (module.forward(wide) < 0).flatten(1).sum(dim=1)  # .forward: no hook, no recursion
        alive = wide != 0
        chance = (would_zero / alive.flatten(1).sum(dim=1).clamp(min=1)).clamp(max=1).view(-1, 1, 1, 1)
        doomed = alive & (torch.rand(wide.shape, generator=generator) < chance.to(torch.float32))
        return (wide.masked_fill(doomed, 0.0),)

    blocks = inverted_residuals(model).values()
    with temporary_hooks([block.project.register_forward_pre_hook(destroy_as_many) for block in blocks]):
        yield model


@dataclass(frozen=True)
class AblationLogits:
    """(N, classes) logits of one batch three ways."""

    linear: torch.Tensor  # as trained
    nonlinear: torch.Tensor  # ReLU6 after every projection
    control: torch.Tensor  # as many values destroyed before every projection instead (`same_damage_elsewhere`)


@torch.inference_mode()
def bottleneck_logits(model: MobileNetV2, batch: torch.Tensor) -> AblationLogits:
    """Logits of `batch` with linear bottlenecks (as trained), with ReLU6 after each one, and with the control."""
    linear = model(batch)
    with nonlinear_bottleneck(model):
        nonlinear = model(batch)
    with same_damage_elsewhere(model):
        control = model(batch)
    return AblationLogits(linear, nonlinear, control)


def top1_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of the rows of (N, classes) logits whose top class is the label."""
    return float((logits.argmax(dim=1) == labels).double().mean())


def top1_agreement(logits: torch.Tensor, other: torch.Tensor) -> float:
    """Share of the rows of two (N, classes) logit tensors whose top class is the same."""
    return float((logits.argmax(dim=1) == other.argmax(dim=1)).double().mean())
