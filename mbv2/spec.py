"""The MobileNetV2 architecture as data: the paper's Table 2 plus the knobs around it.

An `ArchSpec` is validated when it is made, so every other module can trust it. The limits
below keep a typo (c=32000, resolution=22400) from allocating gigabytes: they are checked
on paper, before any tensor exists.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from mbv2 import cost
from mbv2.errors import SpecError
from mbv2.jsonfile import parse_json

Padding = Literal["symmetric", "tf_same"]
PADDINGS: tuple[str, ...] = ("symmetric", "tf_same")

MAX_EXPANSION = 32
MAX_TABLE_CHANNELS = 4096
MAX_REPEATS = 32
MAX_ROWS = 32
MIN_WIDTH, MAX_WIDTH = 0.1, 4.0
MIN_RESOLUTION, MAX_RESOLUTION = 32, 1024
MAX_LAYER_CHANNELS = 16_384
MAX_NUM_CLASSES = 50_000
# One float32 feature map of 64M elements is 256 MiB; the model keeps a few alive at once.
MAX_ACTIVATION_ELEMENTS = 64 * 2**20
MAX_PARAMETERS = 100_000_000

# The spec field and link parameter that hold Table 2's rows. They were called "blocks" until a stage
# (a row, n blocks) was told apart from a block (one inverted residual); spec files, weight sidecars
# and links saved before still say "blocks", so reading accepts that name too.
STAGES_NAME = "stages"
OLD_STAGES_NAME = "blocks"


@dataclass(frozen=True)
class Stage:
    """One row of Table 2: n inverted residual blocks with expansion t, output channels c, first stride s.

    A stage is the row; each of the n inverted residuals it makes is a block (`BlockPlan`).
    """

    t: int
    c: int
    n: int
    s: int


@dataclass(frozen=True)
class Column:
    """One column of Table 2, named once for the messages here and the app's table editor."""

    letter: str  # the paper's symbol, also Stage's field
    word: str
    help: str

    @property
    def in_words(self) -> str:
        """How messages name the column: "expansion t"."""
        return f"{self.word} {self.letter}"


# In Stage's field order, which is the order of a row's four values.
COLUMNS: dict[str, Column] = {
    column.letter: column
    for column in (
        Column(
            "t", "expansion", "How many times wider than its input a block's hidden layer is (the paper uses 1 or 6)."
        ),
        Column("c", "channels", "Output channels of every block in the row, before the width multiplier."),
        Column("n", "repeats", "How many blocks the row stacks."),
        Column("s", "stride", "Stride of the row's first block, 1 or 2 (2 halves the feature map); the others use 1."),
    )
}

PAPER_STAGES: tuple[Stage, ...] = (
    Stage(1, 16, 1, 1),
    Stage(6, 24, 2, 2),
    Stage(6, 32, 3, 2),
    Stage(6, 64, 4, 2),
    Stage(6, 96, 3, 1),
    Stage(6, 160, 3, 2),
    Stage(6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never below 90% of `value`.

    Same rule as torchvision's `_make_divisible` (from the TF reference), so channel counts
    and therefore state_dict shapes agree with torchvision for every width multiplier.
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class BlockPlan:
    """One inverted residual block as it is built: channels and stride after rounding."""

    stage: int  # 1-based row of the table
    repeat: int  # 0-based repeat within the row
    in_channels: int
    hidden_channels: int
    out_channels: int
    stride: int
    expansion: int

    @property
    def has_residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    @property
    def has_expansion(self) -> bool:
        return self.expansion != 1


@dataclass(frozen=True)
class ArchSpec:
    """Everything needed to build a MobileNetV2; invalid combinations raise `SpecError`."""

    stages: tuple[Stage, ...] = PAPER_STAGES
    width_mult: float = 1.0
    resolution: int = 224
    stem_channels: int = 32
    last_channels: int = 1280
    round_nearest: int = 8
    num_classes: int = 1000
    padding: Padding = "symmetric"
    _plans: tuple[BlockPlan, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        problems = _field_problems(self)
        if not problems:
            object.__setattr__(self, "_plans", _plan_blocks(self))
            problems = _size_problems(self)
        if problems:
            raise SpecError(problems)

    @property
    def stem_out(self) -> int:
        return make_divisible(self.stem_channels * self.width_mult, self.round_nearest)

    @property
    def last_out(self) -> int:
        # The paper keeps 1280 for width < 1 (the classifier needs a rich feature) and scales up.
        scale = max(1.0, self.width_mult)
        return make_divisible(self.last_channels * scale, self.round_nearest)

    @property
    def block_plans(self) -> tuple[BlockPlan, ...]:
        return self._plans

    def feature_sizes(self) -> list[int]:
        """Spatial side after the stem and after each block (stride-2 layers round up)."""
        side = math.ceil(self.resolution / 2)
        sides = [side]
        for plan in self._plans:
            side = math.ceil(side / plan.stride)
            sides.append(side)
        return sides

    def replace(self, **changes: Any) -> ArchSpec:
        """A copy with `changes`, validated like any new spec."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        values[STAGES_NAME] = [asdict(stage) for stage in self.stages]
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_query(self) -> dict[str, str]:
        """A compact, readable link form: stages=1-16-1-1,6-24-2-2,... width=1.0 res=224 pad=symmetric."""
        return {
            STAGES_NAME: ",".join(f"{stage.t}-{stage.c}-{stage.n}-{stage.s}" for stage in self.stages),
            "width": str(self.width_mult),
            "res": str(self.resolution),
            "pad": self.padding,
        }

    def with_query(self, params: Mapping[str, str]) -> ArchSpec:
        """The inverse of `to_query`; the parameters a link leaves out keep this spec's values.

        Links get edited by hand, so each unreadable parameter gets its own message, all at once.
        A link from before the rename names the table `blocks=`; it reads the same.
        """
        changes: dict[str, Any] = {}
        problems: list[str] = []
        names = [name for name in (STAGES_NAME, OLD_STAGES_NAME) if name in params]
        if len(names) == 2:
            problems.append(_both_names("The link", "parameters"))
        elif names:
            try:
                changes["stages"] = _stages_from_link(params[names[0]], names[0])
            except SpecError as error:
                problems += error.problems
        numbers = (("width", "width_mult", float, "a number"), ("res", "resolution", int, "a whole number"))
        for name, field_name, parse, kind in numbers:
            if name in params:
                try:
                    changes[field_name] = parse(params[name])
                except ValueError:
                    problems.append(f"{name} in the link must be {kind}, got {params[name]!r}.")
        if problems:
            raise SpecError(problems)
        if "pad" in params:
            changes["padding"] = params["pad"]
        return self.replace(**changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        known = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(data) - known - {OLD_STAGES_NAME})
        if unknown:
            raise SpecError([f"Unknown field(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}."])
        # A spec file written by hand or by a spreadsheet may say 224.0; the table accepts 6.0 too.
        values = {name: _whole_float_as_int(value) if name in _INT_FIELDS else value for name, value in data.items()}
        names = [name for name in (STAGES_NAME, OLD_STAGES_NAME) if name in values]
        if len(names) == 2:
            raise SpecError([_both_names("The spec", "fields")])
        if names:
            values[STAGES_NAME] = stages_from_rows(values.pop(names[0]), name=names[0])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = parse_json(text)
        except ValueError as error:
            raise SpecError([str(error)]) from None
        if not isinstance(data, dict):
            raise SpecError(["The JSON must be an object with fields such as stages and width_mult."])
        return cls.from_dict(data)


def stages_from_rows(rows: Any, name: str = STAGES_NAME) -> tuple[Stage, ...]:
    """Stages from table rows (mappings with t, c, n, s, or 4-sequences), as typed by a person.

    Whole-valued floats (6.0) are accepted because spreadsheets and data editors produce them;
    anything else gets a message naming the row and the column. `name` is the field the rows
    came in, for the message when they are not a list at all.
    """
    if not isinstance(rows, (list, tuple)):
        raise SpecError([f"{name} must be a list of rows (t, c, n, s), got {rows!r}."])
    problems: list[str] = []
    stages: list[Stage] = []
    for number, row in enumerate(rows, start=1):
        if isinstance(row, Stage):
            stages.append(row)
            continue
        if isinstance(row, dict):
            cells = [row.get(name) for name in COLUMNS]
        elif isinstance(row, (list, tuple)) and len(row) == 4:
            cells = list(row)
        else:
            problems.append(f"Row {number}: expected the four values t, c, n, s, got {row!r}.")
            continue
        if all(_is_missing(cell) for cell in cells):  # a freshly added row: one message, not four
            problems.append(f"Row {number} is empty: fill in t, c, n and s, for example 6, 24, 2, 2.")
            continue
        values = [_as_whole_number(cell) for cell in cells]
        problems += [
            _not_whole(f"Row {number}: {COLUMNS[name].in_words}", cell)
            for name, cell, value in zip(COLUMNS, cells, values)
            if value is None
        ]
        if None not in values:
            stages.append(Stage(*values))
    if problems:
        raise SpecError(problems)
    return tuple(stages)


def _stages_from_link(text: str, name: str) -> tuple[Stage, ...]:
    """The table from a link's `name=` parameter (stages, or blocks in an old link): t-c-n-s rows joined by commas."""
    rows = text.split(",")
    malformed = [
        f"Row {number} of {name} in the link is {row!r}; write each row as t-c-n-s, for example 6-24-2-2."
        for number, row in enumerate(rows, start=1)
        if row.count("-") != 3
    ]
    if malformed:
        raise SpecError(malformed)
    return stages_from_rows([row.split("-") for row in rows])


def _both_names(where: str, kind: str) -> str:
    old = f"{OLD_STAGES_NAME}, the old name of {STAGES_NAME}"
    return f"{where} has both {kind} {STAGES_NAME} and {old}; keep only {STAGES_NAME}."


def _not_whole(label: str, value: Any) -> str:
    if _is_missing(value):
        return f"{label} is empty; type a whole number."
    return f"{label} must be a whole number, got {value!r}."


def _is_missing(cell: Any) -> bool:
    return cell is None or (isinstance(cell, float) and math.isnan(cell)) or cell == ""


def _as_whole_number(cell: Any) -> int | None:
    if isinstance(cell, bool) or _is_missing(cell):
        return None
    if isinstance(cell, str):
        try:
            cell = float(cell.strip())
        except ValueError:
            return None
    try:
        number = float(cell)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


_INT_FIELDS = ("resolution", "stem_channels", "last_channels", "round_nearest", "num_classes")


def _whole_float_as_int(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(problems: list[str], label: str, value: Any, low: int, high: int, hint: str = "") -> None:
    if not _is_int(value):
        problems.append(_not_whole(label, value))
    elif not low <= value <= high:
        problems.append(f"{label} must be between {low} and {high}, got {value}.{hint}")


def _field_problems(spec: ArchSpec) -> list[str]:
    problems: list[str] = []
    if not spec.stages:
        problems.append("The bottleneck table is empty: add at least one row (t, c, n, s).")
    if len(spec.stages) > MAX_ROWS:
        problems.append(f"The table has {len(spec.stages)} rows; at most {MAX_ROWS} are allowed.")
    for number, stage in enumerate(spec.stages, start=1):
        if not isinstance(stage, Stage):
            problems.append(f"Row {number}: expected a Stage(t, c, n, s), got {stage!r}.")
            continue
        row = f"Row {number}"
        _check_int(problems, f"{row}: {COLUMNS['t'].in_words}", stage.t, 1, MAX_EXPANSION, " The paper uses 1 or 6.")
        _check_int(problems, f"{row}: {COLUMNS['c'].in_words}", stage.c, 1, MAX_TABLE_CHANNELS)
        _check_int(problems, f"{row}: {COLUMNS['n'].in_words}", stage.n, 1, MAX_REPEATS)
        if stage.s not in (1, 2) or not _is_int(stage.s):
            problems.append(f"{row}: {COLUMNS['s'].in_words} must be 1 or 2, got {stage.s!r}.")
    if isinstance(spec.width_mult, bool) or not isinstance(spec.width_mult, (int, float)):
        problems.append(f"Width multiplier must be a number, got {spec.width_mult!r}.")
    elif not MIN_WIDTH <= spec.width_mult <= MAX_WIDTH:
        problems.append(f"Width multiplier must be between {MIN_WIDTH} and {MAX_WIDTH}, got {spec.width_mult}.")
    _check_int(problems, "Input resolution", spec.resolution, MIN_RESOLUTION, MAX_RESOLUTION)
    _check_int(problems, "Stem channels", spec.stem_channels, 1, MAX_TABLE_CHANNELS)
    _check_int(problems, "Last channels", spec.last_channels, 1, MAX_LAYER_CHANNELS)
    _check_int(problems, "Channel divisor", spec.round_nearest, 1, 64)
    _check_int(problems, "Number of classes", spec.num_classes, 1, MAX_NUM_CLASSES)
    if spec.padding not in PADDINGS:
        problems.append(f"Padding must be one of {', '.join(PADDINGS)}, got {spec.padding!r}.")
    return problems


def _plan_blocks(spec: ArchSpec) -> tuple[BlockPlan, ...]:
    plans = []
    in_channels = spec.stem_out
    for number, stage in enumerate(spec.stages, start=1):
        out_channels = make_divisible(stage.c * spec.width_mult, spec.round_nearest)
        for repeat in range(stage.n):
            plans.append(
                BlockPlan(
                    stage=number,
                    repeat=repeat,
                    in_channels=in_channels,
                    # torchvision rounds the hidden width with round(), not make_divisible.
                    hidden_channels=int(round(in_channels * stage.t)),
                    out_channels=out_channels,
                    stride=stage.s if repeat == 0 else 1,
                    expansion=stage.t,
                )
            )
            in_channels = out_channels
    return tuple(plans)


def _size_problems(spec: ArchSpec) -> list[str]:
    """Refuse, before allocation, what would exhaust memory; name the limit that was hit."""
    problems: list[str] = []
    widest = max(
        [(spec.stem_out, "The stem"), (spec.last_out, "The last 1x1 convolution")]
        + [(p.hidden_channels, f"Row {p.stage} (expanded)") for p in spec.block_plans]
    )
    if widest[0] > MAX_LAYER_CHANNELS:
        problems.append(
            f"{widest[1]} would have {widest[0]:,} channels; the limit is {MAX_LAYER_CHANNELS:,}. "
            "Lower c, t or the width multiplier."
        )
    largest = cost.largest_feature_map(spec)
    if largest > MAX_ACTIVATION_ELEMENTS:
        problems.append(
            f"The largest feature map would hold {largest:,} values ({largest * 4 / 2**30:.1f} GiB); "
            f"the limit is {MAX_ACTIVATION_ELEMENTS:,} values ({MAX_ACTIVATION_ELEMENTS * 4 / 2**20:.0f} MiB). "
            "Lower the resolution, the width multiplier or t."
        )
    params = parameter_estimate(spec)
    if params > MAX_PARAMETERS:
        problems.append(
            f"The model would have about {params:,} parameters; the limit is {MAX_PARAMETERS:,}. "
            "Lower c, t, n or the width multiplier."
        )
    return problems + cost.spec_problems(spec)


def parameter_estimate(spec: ArchSpec) -> int:
    """Exact parameter count from the plan alone (convolutions, BatchNorm affine, classifier)."""
    total = 3 * 9 * spec.stem_out + 2 * spec.stem_out
    for plan in spec.block_plans:
        hidden = plan.hidden_channels
        if plan.has_expansion:
            total += plan.in_channels * hidden + 2 * hidden
        total += 9 * hidden + 2 * hidden
        total += hidden * plan.out_channels + 2 * plan.out_channels
    last_in = spec.block_plans[-1].out_channels
    total += last_in * spec.last_out + 2 * spec.last_out
    return total + spec.last_out * spec.num_classes + spec.num_classes


def shape_notes(spec: ArchSpec) -> list[str]:
    """Plain-words notes for stride-2 layers that get an odd side and so cannot halve it exactly.

    Nothing breaks (a padded 3x3 convolution with stride 2 gives half the side, rounded up), but
    the sizes stop following resolution / 32, which puzzles anyone checking them by hand. Empty
    when every halving is exact, i.e. when the resolution is a multiple of 2 ** (stride-2 layers).
    """
    layers = [("The stem", 2)] + [(f"Row {plan.stage}'s first block", plan.stride) for plan in spec.block_plans]
    sides = spec.feature_sizes()
    roundings = [
        f"{layer} halves a {side}×{side} map: half of {side} is {side / 2:g}, so it gives {out}×{out} (rounded up)."
        for (layer, stride), side, out in zip(layers, [spec.resolution, *sides], sides)
        if stride == 2 and side % 2
    ]
    if not roundings:
        return []
    halvings = sum(stride == 2 for _, stride in layers)
    factor = 2**halvings
    return [
        f"The network halves the map {halvings} times (once per stride-2 layer), so the sizes come out even "
        f"only when the resolution is a multiple of {factor:,}, and {spec.resolution} is not.",
        *roundings,
        f"So the last feature map is {sides[-1]}×{sides[-1]}, not {spec.resolution} ÷ {factor:,} = "
        f"{spec.resolution / factor:g}; the network still works.",
    ]


def spec_differences(edited: ArchSpec, trained: ArchSpec) -> list[str]:
    """What a student changed, in words: "width 0.5 instead of 1.0", "table rows 2, 7"."""
    differences = []
    if edited.stages != trained.stages:
        changed = [
            str(number)
            for number in range(1, max(len(edited.stages), len(trained.stages)) + 1)
            if edited.stages[number - 1 : number] != trained.stages[number - 1 : number]
        ]
        differences.append(f"table row{'s' * (len(changed) > 1)} {', '.join(changed)}")
    labels = {"width_mult": "width", "resolution": "resolution", "padding": "padding"}
    for name, label in labels.items():
        if getattr(edited, name) != getattr(trained, name):
            differences.append(f"{label} {getattr(edited, name)} instead of {getattr(trained, name)}")
    if not differences and edited != trained:
        differences.append("stem, head or class count")
    return differences
