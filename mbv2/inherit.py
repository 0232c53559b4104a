"""Pretrained weights on any valid architecture: each layer copied, sliced, grown or new.

A network is a chain of channel *spaces*: the RGB input, the stem's output, each block's
hidden (expanded) channels, each bottleneck, the last convolution's output, the classes.
A residual block adds its output to its input, so its input and output are one space, and
a row's chain of residual blocks shares one bottleneck space. Every layer reads one space
and writes one. Inheriting weights means deciding, for each pair (target space, source
space), which source channel each target channel takes, or that it is new:

- same size: channel i is channel i (copied);
- larger: the source channels, then new ones (grown). A new channel's *outgoing* weights
  are zero, so it never changes what the network computes, while its incoming weights are
  random so that training can put it to use; a new residual block's projection starts at
  zero, which makes the block the identity. Growth keeps the logits exactly.
- smaller: the most important channels (sliced). Importance is measured, not read off the
  weights: for every layer that reads the space, the variance of each input channel on
  calibration images times the squared norm of the weights that read it, i.e. the energy
  the channel puts into that layer's output. One ranking serves the whole residual chain,
  so a bottleneck keeps the same channels wherever it is read. The correction step then
  makes up for what was dropped, in each layer that reads it: by default each dropped
  channel is predicted from the kept ones by least squares on the same images (x_dropped ~
  A x_kept + b, folded into the weights and the bias); "mean" keeps only b, the dropped
  channels' mean (exact on average); "none" just removes them.
  BatchNorm gamma is never used to rank: weights with BatchNorm folded in (the shared TF
  weights) have every gamma 1, and their statistics are never re-estimated.

Rows are matched by their position in the table and blocks by their repeat within the row;
with fewer repeats the first n are kept unless `kept_repeats` names others. A row or class
count the source lacks gets random weights, and the report says so. Resolution, stride and
padding change no tensor.

torch-pruning's DependencyGraph finds such coupled channels by tracing a model and prunes it
in place; here the spec already names every space, the exact channel counts come from the
spec (`make_divisible`), and growth is needed as well, so the mapping is written out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import nn

from mbv2.errors import InheritanceError
from mbv2.hooks import temporary_hooks
from mbv2.model import InvertedResidual, MobileNetV2, build_model
from mbv2.spec import ArchSpec

Outcome = Literal["copied", "sliced", "grown", "new", "identity"]
OUTCOME_MEANINGS: dict[str, str] = {
    "copied": "the pretrained tensors as they are",
    "sliced": "the most important of the pretrained channels",
    "grown": "the pretrained channels plus new ones that leave the output unchanged",
    "identity": "a new block whose projection starts at zero, so it passes its input through",
    "new": "random: nothing pretrained fits here",
}

Correction = Literal["none", "mean", "regression"]
CORRECTIONS: dict[str, str] = {
    "regression": "each dropped channel predicted from the kept ones by least squares",
    "mean": "each dropped channel replaced by its mean",
    "none": "dropped channels simply removed",
}

RIDGE = 0.1

# A channel index: for each target channel, the source channel it takes, or None for a new one.
ChannelIndex = tuple[int | None, ...]


@dataclass(frozen=True)
class Layer:
    """A layer with weights, and the channel spaces it reads and writes."""

    role: tuple[object, ...]  # ("stem",), (stage, repeat, "expand" | "depthwise" | "project"), ("last conv",), ...
    name: str  # the module's name in the model, e.g. "features.2.conv.0.0"
    weight: nn.Conv2d | nn.Linear
    norm: nn.BatchNorm2d | None
    reads: str
    writes: str

    @property
    def is_depthwise(self) -> bool:
        return isinstance(self.weight, nn.Conv2d) and self.weight.groups > 1

    @property
    def is_pointwise(self) -> bool:
        """A layer whose every output is a weighted sum of its input channels at one pixel."""
        return isinstance(self.weight, nn.Linear) or (not self.is_depthwise and self.weight.kernel_size == (1, 1))


def layers_of(model: MobileNetV2) -> list[Layer]:
    """Every layer with weights, in order, with the spaces it reads and writes (see the module doc)."""
    names = {module: name for name, module in model.named_modules()}
    found: list[Layer] = []

    def add(role: tuple[object, ...], unit: nn.Module, norm: nn.Module | None, reads: str, writes: str) -> None:
        found.append(Layer(role, names[unit], unit, norm, reads, writes))

    stem = model.features[0]
    space = "stem"
    add(("stem",), stem[0], stem[1], "rgb", space)
    for index, block in enumerate(model.features):
        if not isinstance(block, InvertedResidual):
            continue
        plan = block.plan
        where = (plan.stage, plan.repeat)
        hidden = f"hidden {index}" if plan.has_expansion else space
        if block.expand is not None:
            add((*where, "expand"), block.expand[0], block.expand[1], space, hidden)
        add((*where, "depthwise"), block.depthwise[0], block.depthwise[1], hidden, hidden)
        writes = space if plan.has_residual else f"bottleneck {index}"
        project, project_norm = (block.get_submodule(name) for name in block.parts["project"])
        add((*where, "project"), project, project_norm, hidden, writes)
        space = writes
    last = model.features[-1]
    add(("last conv",), last[0], last[1], space, "last")
    add(("classifier",), model.classifier[-1], None, "last", "classes")
    return found


@dataclass(frozen=True)
class Calibration:
    """Per-channel mean and covariance of the input of every pointwise layer of one model."""

    means: Mapping[str, torch.Tensor]  # by module name; float64 (C,)
    covariances: Mapping[str, torch.Tensor]  # float64 (C, C)
    images: int

    def variance(self, name: str) -> torch.Tensor:
        return self.covariances[name].diagonal().clamp(min=0)


@torch.inference_mode()
def calibrate(model: MobileNetV2, batches: Iterable[torch.Tensor]) -> Calibration:
    """Run `batches` (preprocessed images) through `model` and keep input statistics of its pointwise layers."""
    sums: dict[str, torch.Tensor] = {}
    products: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = defaultdict(int)

    def accumulate(name: str):
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            values = inputs[0]
            values = values.transpose(0, 1).flatten(1) if values.dim() == 4 else values.T  # (channels, samples)
            sums[name] = sums.get(name, 0) + values.double().sum(dim=1)
            products[name] = products.get(name, 0) + (values @ values.T).double()
            counts[name] += values.shape[1]

        return hook

    pointwise = [layer for layer in layers_of(model) if layer.is_pointwise]
    images = 0
    with temporary_hooks([layer.weight.register_forward_pre_hook(accumulate(layer.name)) for layer in pointwise]):
        for batch in batches:
            model(batch)
            images += batch.shape[0]
    if not images:
        raise InheritanceError("No calibration images: give at least one image to measure which channels matter.")
    means = {name: sums[name] / counts[name] for name in sums}
    covariances = {name: products[name] / counts[name] - torch.outer(means[name], means[name]) for name in sums}
    return Calibration(means=means, covariances=covariances, images=images)


@dataclass(frozen=True)
class LayerReport:
    """What happened to one target layer's weights."""

    name: str  # module name in the target model
    role: str  # in words, e.g. "row 2, block 1, expand"
    outcome: Outcome
    detail: str  # e.g. "kept 96 of 144 input channels"
    source: str | None  # module name in the source model


@dataclass(frozen=True)
class InheritanceReport:
    layers: tuple[LayerReport, ...]
    dropped_blocks: tuple[str, ...]  # pretrained blocks no target block took, e.g. "row 4, block 4"
    correction: Correction  # "none" also where nothing was sliced
    calibration_images: int

    def counts(self) -> dict[str, int]:
        """How many layers had each outcome, in the order of OUTCOME_MEANINGS."""
        found = [layer.outcome for layer in self.layers]
        return {outcome: found.count(outcome) for outcome in OUTCOME_MEANINGS if outcome in found}

    @property
    def is_exact(self) -> bool:
        """True when the target computes exactly what the source computes (nothing sliced or random)."""
        return not self.dropped_blocks and all(
            layer.outcome in ("copied", "grown", "identity") for layer in self.layers
        )

    def summary(self) -> str:
        """One line: "52 layers: 40 copied, 12 sliced" plus whether the function is kept."""
        parts = ", ".join(f"{count} {outcome}" for outcome, count in self.counts().items())
        if self.dropped_blocks:
            parts += (
                f"; pretrained block{'s' * (len(self.dropped_blocks) > 1)} left out: {', '.join(self.dropped_blocks)}"
            )
        verdict = (
            "the logits are the original's"
            if self.is_exact
            else "an approximation of the original"
            + (
                f" ({CORRECTIONS[self.correction]}, measured on {self.calibration_images} images)"
                if self.correction != "none"
                else ""
            )
        )
        return f"{len(self.layers)} layers: {parts}; {verdict}."


@dataclass(frozen=True)
class Inherited:
    model: MobileNetV2
    report: InheritanceReport


@dataclass
class _Mapper:
    """The channel indices of one (source, target) pair of models, decided once per pair of spaces."""

    source_sizes: dict[str, int]
    target_sizes: dict[str, int]
    importance: dict[str, torch.Tensor]
    chosen: dict[tuple[str, str], ChannelIndex] = field(default_factory=dict)

    def index(self, target_space: str, source_space: str) -> ChannelIndex:
        key = (target_space, source_space)
        if key not in self.chosen:
            self.chosen[key] = self._choose(self.target_sizes[target_space], source_space)
        return self.chosen[key]

    def _choose(self, wanted: int, source_space: str) -> ChannelIndex:
        available = self.source_sizes[source_space]
        if wanted >= available:
            return tuple(range(available)) + (None,) * (wanted - available)
        # A space no pointwise layer reads has no measured importance: keep its first channels.
        importance = self.importance.get(source_space, torch.zeros(available))
        ranking = torch.argsort(importance, descending=True, stable=True)
        return tuple(sorted(int(channel) for channel in ranking[:wanted]))


def inherit(
    source_model: MobileNetV2,
    target_spec: ArchSpec,
    calibration: Calibration | None = None,
    kept_repeats: Mapping[int, Sequence[int]] | None = None,
    correction: Correction = "regression",
    seed: int = 0,
) -> Inherited:
    """`target_spec` built with `source_model`'s weights wherever they fit (see the module docstring).

    `calibration` (from `calibrate(source_model, ...)`) is needed only when a space shrinks;
    `kept_repeats` maps a row (1-based) to the source repeats (0-based) its blocks take, for rows
    with fewer repeats than the source; `correction` says how dropped channels are made up for (CORRECTIONS).
    """
    source_spec = source_model.spec
    repeats = _repeat_mapping(source_spec, target_spec, kept_repeats or {})
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # new channels are random, but the same for the same edit
        target_model = build_model(target_spec)
    source_layers = {layer.role: layer for layer in layers_of(source_model)}
    target_layers = layers_of(target_model)
    source_sizes = _space_sizes(source_layers.values())
    target_sizes = _space_sizes(target_layers)
    source_roles = [_source_role(layer.role, repeats) for layer in target_layers]
    pairs = [(layer, source_layers.get(role)) for layer, role in zip(target_layers, source_roles)]
    if pairs[-1][1] is not None and target_spec.num_classes != source_spec.num_classes:
        pairs[-1] = (pairs[-1][0], None)  # classes are not channels: another class count is a new classifier
    shrinks = any(
        target_sizes[target.writes] < source_sizes[source.writes] for target, source in pairs if source is not None
    )
    if shrinks and calibration is None:
        raise InheritanceError(
            "This architecture has fewer channels than the pretrained one somewhere, and choosing which to keep "
            "needs calibration images: pass a Calibration from mbv2.inherit.calibrate."
        )
    importance = _importance(source_layers.values(), calibration) if calibration is not None else {}
    mapper = _Mapper(source_sizes, target_sizes, importance)
    reports = []
    with torch.no_grad():
        for (target, source), source_role in zip(pairs, source_roles):
            if source is None:
                new_block = len(source_role) == 3 and source_role[1] is None
                reports.append(_fill_new(target, target_spec, new_block))
            else:
                reports.append(_transfer(target, source, mapper, calibration, correction))
    used = {(role[0], role[1]) for role in source_roles if len(role) == 3}
    dropped = tuple(
        _role_words((plan.stage, plan.repeat))
        for plan in source_spec.block_plans
        if (plan.stage, plan.repeat) not in used
    )
    report = InheritanceReport(
        layers=tuple(reports),
        dropped_blocks=dropped,
        correction=correction if shrinks else "none",
        calibration_images=calibration.images if calibration is not None and shrinks else 0,
    )
    return Inherited(model=target_model.eval(), report=report)


def without_block(spec: ArchSpec, stage: int, repeat: int) -> tuple[ArchSpec, dict[int, tuple[int, ...]]]:
    """`spec` with one residual block of row `stage` left out, and the `kept_repeats` that say which."""
    plans = {(plan.stage, plan.repeat): plan for plan in spec.block_plans}
    plan = plans.get((stage, repeat))
    if plan is None or not plan.has_residual:
        raise InheritanceError(
            f"Row {stage}, block {repeat + 1} is not a residual block, so leaving it out would change the "
            "shapes around it; only blocks that add their input to their output can be removed alone."
        )
    row = spec.stages[stage - 1]
    stages = spec.stages[: stage - 1] + (replace(row, n=row.n - 1),) + spec.stages[stage:]
    return spec.replace(stages=stages), {stage: tuple(r for r in range(row.n) if r != repeat)}


def _repeat_mapping(
    source: ArchSpec, target: ArchSpec, kept: Mapping[int, Sequence[int]]
) -> dict[tuple[int, int], int | None]:
    """(row, target repeat) -> source repeat, or None where the block is new."""
    mapping: dict[tuple[int, int], int | None] = {}
    for stage, row in enumerate(target.stages, start=1):
        available = source.stages[stage - 1].n if stage <= len(source.stages) else 0
        chosen = list(kept.get(stage, range(min(row.n, available))))
        if stage in kept and (
            len(chosen) != min(row.n, available)
            or len(set(chosen)) != len(chosen)
            or not all(isinstance(r, int) and 0 <= r < available for r in chosen)
        ):
            raise InheritanceError(
                f"Row {stage} keeps {row.n} of the pretrained row's {available} blocks: name {min(row.n, available)} "
                f"different repeats between 0 and {available - 1}, got {list(kept[stage])}."
            )
        for repeat in range(row.n):
            mapping[stage, repeat] = chosen[repeat] if repeat < len(chosen) else None
    return mapping


def _source_role(role: tuple[object, ...], repeats: Mapping[tuple[int, int], int | None]) -> tuple[object, ...]:
    if len(role) == 1:
        return role
    stage, repeat, part = role
    return (stage, repeats[stage, repeat], part)


def _space_sizes(layers: Iterable[Layer]) -> dict[str, int]:
    sizes = {"rgb": 3}
    for layer in layers:
        sizes[layer.writes] = layer.weight.weight.shape[0]
    return sizes


def _effective_weight(layer: Layer) -> torch.Tensor:
    """The weight as (outputs, inputs), scaled by the BatchNorm that follows, as the next layer sees it."""
    weight = layer.weight.weight.detach().flatten(1).double()
    if layer.norm is not None:
        norm = layer.norm
        weight = weight * (norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)).double()[:, None]
    return weight


def _importance(layers: Iterable[Layer], calibration: Calibration) -> dict[str, torch.Tensor]:
    """Per space: the output energy each channel carries into the layers that read it (see the module doc)."""
    importance: dict[str, torch.Tensor] = {}
    for layer in layers:
        if layer.is_pointwise and layer.name in calibration.covariances:
            energy = calibration.variance(layer.name) * _effective_weight(layer).square().sum(dim=0)
            importance[layer.reads] = importance.get(layer.reads, 0) + energy
    return importance


def _transfer(
    target: Layer, source: Layer, mapper: _Mapper, calibration: Calibration | None, correction: Correction
) -> LayerReport:
    """Copy `source`'s weights into `target` through the channel indices; new channels stay random."""
    outputs = mapper.index(target.writes, source.writes)
    inputs = outputs if target.is_depthwise else mapper.index(target.reads, source.reads)
    kept_out = [(i, s) for i, s in enumerate(outputs) if s is not None]
    rows = torch.tensor([i for i, _ in kept_out])
    source_rows = torch.tensor([s for _, s in kept_out])
    weight, source_weight = target.weight.weight, source.weight.weight.detach()
    if target.is_depthwise:
        weight[rows] = source_weight[source_rows]
        _copy_bias(target, source, rows, source_rows)
        return _report(target, source, inputs, outputs)
    kept_in = [(j, s) for j, s in enumerate(inputs) if s is not None]
    columns = torch.tensor([j for j, _ in kept_in])
    source_columns = [s for _, s in kept_in]
    dropped = sorted(set(range(source_weight.shape[1])) - set(source_columns))
    kept_weight, shift = source_weight[:, source_columns], None
    if dropped and correction != "none" and calibration is not None and source.is_pointwise:
        corrected, shift = _corrected(source, source_columns, dropped, calibration, correction)
        kept_weight = corrected.float().reshape(kept_weight.shape)
    weight[:, [j for j, s in enumerate(inputs) if s is None]] = 0  # a new input channel must not change any output
    weight[rows[:, None], columns] = kept_weight[source_rows]
    _copy_bias(target, source, rows, source_rows)
    if shift is not None:
        _add_to_output(target, rows, shift[source_rows].float())
    return _report(target, source, inputs, outputs)


def _corrected(
    source: Layer, kept: list[int], dropped: list[int], calibration: Calibration, correction: Correction
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights on the kept inputs, and an output shift, that stand in for the dropped inputs.

    "mean": each dropped input is replaced by its mean on the calibration images.
    "regression": each dropped input is replaced by its least-squares prediction from the kept
    ones, x_dropped ~ A x_kept + b (ridge-regularised), which the mean is the special case A = 0 of.
    """
    weight = source.weight.weight.detach().flatten(1).double()
    mean, covariance = calibration.means[source.name], calibration.covariances[source.name]
    prediction = torch.zeros(len(dropped), len(kept), dtype=torch.float64)
    if correction == "regression":
        among_kept = covariance[kept][:, kept]
        # Ridge: 0.1 x the mean variance. Few calibration images leave late layers (7x7 maps) with fewer
        # samples than channels; on imagenet-dev/eval it beat 0.01 and 0.001 for 16 images and tied for 50.
        ridge = RIDGE * float(among_kept.diagonal().mean().clamp(min=1e-12)) * torch.eye(len(kept), dtype=torch.float64)
        prediction = torch.linalg.solve(among_kept + ridge, covariance[kept][:, dropped]).T
    offset = mean[dropped] - prediction @ mean[kept]
    return weight[:, kept] + weight[:, dropped] @ prediction, weight[:, dropped] @ offset


def _add_to_output(target: Layer, rows: torch.Tensor, shift: torch.Tensor) -> None:
    if target.norm is None:
        target.weight.bias[rows] += shift
    else:
        target.norm.running_mean[rows] -= shift  # BatchNorm subtracts its mean: y + shift - m == y - (m - shift)


def _copy_bias(target: Layer, source: Layer, rows: torch.Tensor, source_rows: torch.Tensor) -> None:
    if target.norm is None:
        target.weight.bias[rows] = source.weight.bias.detach()[source_rows]
        return
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(target.norm, name)[rows] = getattr(source.norm, name).detach()[source_rows]
    for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
        new = torch.ones(len(getattr(target.norm, name)), dtype=torch.bool)
        new[rows] = False
        getattr(target.norm, name)[new] = value  # a plain affine map of what the new channel's weights give


def _fill_new(target: Layer, spec: ArchSpec, new_block: bool) -> LayerReport:
    """A layer nothing pretrained fits: random, except that a new residual block starts as the identity."""
    plans = {(plan.stage, plan.repeat): plan for plan in spec.block_plans}
    plan = plans.get(target.role[:2])
    words = _role_words(target.role)
    if not (new_block and plan is not None and plan.has_residual):
        return LayerReport(target.name, words, "new", "random weights", None)
    if target.role[-1] == "project":
        target.weight.weight.zero_()
        return LayerReport(target.name, words, "identity", "starts at zero, so the block adds nothing", None)
    return LayerReport(target.name, words, "identity", "random, but read only by the zero projection", None)


def _report(target: Layer, source: Layer, inputs: ChannelIndex, outputs: ChannelIndex) -> LayerReport:
    source_in = source.weight.weight.shape[0] if source.is_depthwise else source.weight.weight.shape[1]
    source_out = source.weight.weight.shape[0]
    changes = [
        _change(direction, len(index), available)
        for direction, index, available in (("input", inputs, source_in), ("output", outputs, source_out))
        if not (target.is_depthwise and direction == "input") and len(index) != available
    ]
    if not changes:
        return LayerReport(target.name, _role_words(target.role), "copied", "same shape", source.name)
    outcome: Outcome = "sliced" if any(len(i) < n for i, n in ((inputs, source_in), (outputs, source_out))) else "grown"
    return LayerReport(target.name, _role_words(target.role), outcome, "; ".join(changes), source.name)


def _change(direction: str, wanted: int, available: int) -> str:
    if wanted < available:
        return f"kept {wanted} of {available} {direction} channels"
    return f"{available} {direction} channels + {wanted - available} new"


def _role_words(role: tuple[object, ...]) -> str:
    """("last conv",) -> "last conv"; (2, 0, "expand") -> "row 2, block 1, expand"; (4, 3) -> "row 4, block 4"."""
    if len(role) == 1:
        return str(role[0])
    stage, repeat, *part = role
    return ", ".join([f"row {stage}", f"block {int(repeat) + 1}", *map(str, part)])
