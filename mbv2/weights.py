"""Where pretrained weights come from, and what each set expects of its inputs.

A `WeightSource` bundles a state_dict's location with the architecture it fits, its
preprocessing, its labels and its provenance, because weights used with the wrong
padding or normalisation still run but quietly lose accuracy.

Two kinds of source:
- torchvision's `MobileNet_V2_Weights` (downloaded by torchvision, cached in torch's hub dir);
- a local `.pth` state_dict described by a JSON sidecar (see `../shared/weights/`), picked
  with the `MBV2_WEIGHTS` environment variable or found in a folder.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError

import jsonschema
import torch

from mbv2.errors import SpecError, WeightsError, WeightsMismatchError, WeightsUnavailableError
from mbv2.jsonfile import read_json_file
from mbv2.model import MobileNetV2
from mbv2.preprocess import INTERPOLATIONS, Preprocessing
from mbv2.spec import MAX_PARAMETERS, MAX_RESOLUTION, PADDINGS, ArchSpec

WEIGHTS_ENV = "MBV2_WEIGHTS"
# ImageNet-1k's class names in the classifier's order: torchvision's list, shipped so that a local
# source needs no torchvision import (tests/test_weights.py checks it is the same list).
IMAGENET_CATEGORIES: tuple[str, ...] = tuple(
    Path(__file__).with_name("imagenet_categories.txt").read_text().splitlines()
)
# The largest model a spec allows (MAX_PARAMETERS in float32: 381 MiB) with room for BatchNorm buffers.
# Checked on the file and on what its zip archive would unpack to, before torch.load allocates anything.
MAX_WEIGHTS_BYTES = 512 * 2**20
SIDECAR_HINT = (
    "A weights description needs 'file', 'architecture', 'preprocess' (size, mean, std, and "
    "central_crop_fraction or resize_size) and optionally 'padding' and 'labels'."
)
_NUMBER = {"type": "number"}
_THREE = {"type": "array", "minItems": 3, "maxItems": 3}
# Types and ranges of every field; cross-field rules (one crop rule, labels per class) are checked after.
SIDECAR_SCHEMA = {
    "type": "object",
    "required": ["file", "architecture", "preprocess"],
    "properties": {
        "file": {"type": "string", "minLength": 1},
        "architecture": {
            "type": "object",
            "properties": {
                "width_mult": _NUMBER,
                **{name: {"type": "integer"} for name in ("resolution", "round_nearest", "num_classes")},
            },
        },
        "padding": {"enum": list(PADDINGS)},
        "preprocess": {
            "type": "object",
            "required": ["size", "mean", "std"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": MAX_RESOLUTION},
                "resize_size": {"type": "integer", "minimum": 1, "maximum": 2 * MAX_RESOLUTION},
                "central_crop_fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "mean": {**_THREE, "items": _NUMBER},
                "std": {**_THREE, "items": {"type": "number", "exclusiveMinimum": 0}},
                "interpolation": {"enum": list(INTERPOLATIONS)},
            },
        },
        "labels": {"type": ["array", "string"], "items": {"type": "string"}},
        "source": {"type": "string"},
    },
}
_SIDECAR_VALIDATOR = jsonschema.Draft202012Validator(SIDECAR_SCHEMA)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightSource:
    name: str
    spec: ArchSpec  # the architecture (and padding) the tensors were trained with
    preprocessing: Preprocessing
    labels: tuple[str, ...]
    provenance: str
    path: Path | None = None  # a local state_dict
    torchvision_name: str | None = None  # a member of MobileNet_V2_Weights
    sidecar: Path | None = None  # the JSON description of a local state_dict

    @property
    def is_local(self) -> bool:
        return self.path is not None

    def is_available_offline(self) -> bool:
        if self.path is not None:
            return self.path.is_file()
        return _torchvision_cache_path(self.torchvision_name).is_file()


def torchvision_source(name: str) -> WeightSource:
    """A torchvision weight set, with the transforms torchvision ships for it."""
    weights = _torchvision_weights()[name]
    transforms = weights.transforms()
    metrics = weights.meta["_metrics"]["ImageNet-1K"]
    return WeightSource(
        name=f"torchvision {name}",
        spec=ArchSpec(padding="symmetric"),
        preprocessing=Preprocessing(
            crop_size=transforms.crop_size[0],
            resize_size=transforms.resize_size[0],
            mean=tuple(transforms.mean),
            std=tuple(transforms.std),
            interpolation=transforms.interpolation.value,
        ),
        labels=tuple(weights.meta["categories"]),
        provenance=(
            f"torchvision MobileNet_V2_Weights.{name}, {weights.url} "
            f"(ImageNet top-1 {metrics['acc@1']}, top-5 {metrics['acc@5']}; recipe {weights.meta['recipe']})"
        ),
        torchvision_name=name,
    )


def local_source(path: str | os.PathLike[str]) -> WeightSource:
    """A local weights file: the JSON sidecar itself, or a `.pth` with a sidecar beside it.

    A `.pth` without a sidecar is taken to be a torchvision 1.0/224 state_dict with
    torchvision's preprocessing, since that is what `torch.save(model.state_dict())` gives.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"No weights file at {path}. Check the path (set with {WEIGHTS_ENV} or in the picker).")
    sidecar = path if path.suffix == ".json" else path.with_suffix(".json")
    if not sidecar.is_file():
        torchvision_like = torchvision_source("IMAGENET1K_V1")
        return WeightSource(
            name=f"local {path.name}",
            spec=torchvision_like.spec,
            preprocessing=torchvision_like.preprocessing,
            labels=torchvision_like.labels,
            provenance=f"{path} (no JSON sidecar: assuming torchvision's 1.0/224 layout and preprocessing)",
            path=path,
        )
    return _source_from_sidecar(sidecar)


def _source_from_sidecar(sidecar: Path) -> WeightSource:
    try:
        meta = read_json_file(sidecar)
    except (OSError, ValueError) as error:
        raise WeightsError(f"Cannot read the weights description {sidecar}: {error} {SIDECAR_HINT}") from None
    _check_sidecar(sidecar, [_schema_message(error) for error in _SIDECAR_VALIDATOR.iter_errors(meta)])
    arch, prep = meta["architecture"], meta["preprocess"]
    problems = []
    try:
        spec = ArchSpec.from_dict({**arch, "padding": meta.get("padding", "symmetric")})  # stages too, if given
    except SpecError as error:
        problems += [f"architecture: {problem}" for problem in error.problems]
    try:
        preprocessing = Preprocessing(
            crop_size=prep["size"],
            central_crop_fraction=prep.get("central_crop_fraction"),
            resize_size=prep.get("resize_size"),
            mean=tuple(prep["mean"]),
            std=tuple(prep["std"]),
            interpolation=prep.get("interpolation", "bilinear"),
        )
    except ValueError as error:
        problems.append(f"preprocess: {error}")
    _check_sidecar(sidecar, problems)
    weights_file = sidecar.parent / meta["file"]
    return WeightSource(
        name=f"local {weights_file.name}",
        spec=spec,
        preprocessing=preprocessing,
        labels=_labels(meta.get("labels"), spec.num_classes, sidecar),
        provenance=f"{weights_file}: {meta.get('source', 'no source given')}",
        path=weights_file,
        sidecar=sidecar,
    )


def _check_sidecar(sidecar: Path, problems: list[str]) -> None:
    if problems:
        listed = "\n".join(f"- {problem}" for problem in problems)
        raise WeightsError(f"The weights description {sidecar} cannot be used:\n{listed}\n{SIDECAR_HINT}")


def _schema_message(error: jsonschema.ValidationError) -> str:
    """"preprocess.std[1]: 0 is less than or equal to the minimum of 0": the field, then what is wrong."""
    field = error.json_path.removeprefix("$").removeprefix(".")
    return f"{field}: {error.message}" if field else error.message


def _labels(declared: Any, num_classes: int, sidecar: Path) -> tuple[str, ...]:
    if isinstance(declared, list):
        if len(declared) != num_classes:
            raise WeightsError(
                f"{sidecar} lists {len(declared):,} labels, but its architecture has {num_classes:,} classes; "
                "give one label per class, in the order of the classifier's outputs."
            )
        return tuple(declared)
    if num_classes == len(IMAGENET_CATEGORIES):
        return IMAGENET_CATEGORIES  # the sidecar describes ImageNet-1k in words
    raise WeightsError(f"{sidecar} must list its {num_classes} class labels under 'labels'.")


def sources_in_folder(folder: Path) -> list[WeightSource]:
    """The weights described by the JSON files in `folder`.

    A folder also collects other JSON (an exported spec, a sweep): each file that is not a usable
    description is skipped and named in a logged warning, so one stray file disables nothing.
    """
    sources = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            sources.append(local_source(path))
        except WeightsError as error:
            logger.warning("Skipped %s, which does not describe weights: %s", path, error)
    return sources


def sources_at(path: str | os.PathLike[str]) -> list[WeightSource]:
    """The sources a path names: a JSON sidecar or a `.pth` (see `local_source`), or the descriptions
    in a folder (see `sources_in_folder`)."""
    path = Path(path)
    return sources_in_folder(path) if path.is_dir() else [local_source(path)]


def environment_sources() -> list[WeightSource]:
    """The sources `MBV2_WEIGHTS` names (see `sources_at`); none when unset."""
    env_path = os.environ.get(WEIGHTS_ENV)
    return sources_at(env_path) if env_path else []


def _torchvision_weights():
    """torchvision's `MobileNet_V2_Weights`, imported only when a torchvision source is asked for."""
    from torchvision.models import MobileNet_V2_Weights

    return MobileNet_V2_Weights


def available_sources(folders: tuple[Path, ...] = ()) -> list[WeightSource]:
    """Every source worth offering: `MBV2_WEIGHTS`, sidecars in `folders`, then torchvision's.

    A file named by `MBV2_WEIGHTS` itself must be usable; in folders, other files are skipped.
    """
    sources = environment_sources()
    for folder in folders:
        sources += sources_in_folder(folder)
    sources += [torchvision_source(member.name) for member in _torchvision_weights()]
    by_name: dict[str, WeightSource] = {}
    for source in sources:
        first = by_name.setdefault(source.name, source)  # the first mention wins
        if source != first:  # the same description found twice is no conflict
            logger.warning("%s and %s both describe %s; using the first, ignoring the second.",
                           first.sidecar or first.provenance, source.sidecar or source.provenance, source.name)
    return list(by_name.values())


def load_state_dict(source: WeightSource, progress: bool = False) -> dict[str, torch.Tensor]:
    """The source's tensors, never unpickling anything but tensors (`weights_only=True`)."""
    if source.path is not None:
        if not source.path.is_file():
            raise WeightsError(f"The weights file {source.path} named by {source.name} does not exist.")
        _check_archive(source.path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "pickle protocol 4" notes on valid files
                state_dict = torch.load(source.path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
            raise WeightsError(
                f"{source.path.name} is not a plain PyTorch state_dict, so it was not loaded "
                f"(only tensors are accepted, never arbitrary pickled code): {_first_line(error)}"
            ) from None
        if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
            raise WeightsError(
                f"{source.path.name} holds a {type(state_dict).__name__}, not a state_dict (a mapping from "
                "names to tensors). Save one with torch.save(model.state_dict(), path)."
            )
        return _finite(state_dict, source.path.name)
    weights = _torchvision_weights()[source.torchvision_name]
    try:
        return _finite(weights.get_state_dict(progress=progress, weights_only=True), source.name)
    except (URLError, OSError) as error:
        raise WeightsUnavailableError(
            f"Could not download {source.name} ({_first_line(error)}). On a machine with internet run\n"
            "  python -c \"import torchvision; torchvision.models.mobilenet_v2(weights='IMAGENET1K_V1')\"\n"
            f"to fill the cache ({_torchvision_cache_path(source.torchvision_name).parent}), or set "
            f"{WEIGHTS_ENV} to a local .pth (or its .json description)."
        ) from None


def _check_archive(path: Path) -> None:
    """Refuse, before torch.load allocates, a file too large or a zip that would unpack to too much."""
    limit = f"the limit is {MAX_WEIGHTS_BYTES / 2**20:,.0f} MiB (a model of {MAX_PARAMETERS:,} parameters)"
    size = path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise WeightsError(f"{path.name} is {size / 2**20:,.0f} MiB; {limit}.")
    if not zipfile.is_zipfile(path):
        raise WeightsError(
            f"{path.name} is not a plain PyTorch state_dict (torch.save writes a zip archive), so it was not loaded. "
            "Save one with torch.save(model.state_dict(), path)."
        )
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(entry.file_size for entry in archive.infolist())
    if unpacked > MAX_WEIGHTS_BYTES:
        raise WeightsError(
            f"{path.name} would unpack to {unpacked / 2**20:,.0f} MiB from {size / 2**20:,.1f} MiB; {limit}. "
            "torch.save stores tensors uncompressed, so this file was not written by it."
        )


def _finite(state_dict: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    damaged = [key for key, tensor in state_dict.items() if tensor.is_floating_point() and not tensor.isfinite().all()]
    if damaged:
        raise WeightsError(
            f"{name} holds NaN or infinite values in {_listing(damaged)}, so every prediction would be NaN. "
            "The file is damaged or was saved after training diverged: use another checkpoint."
        )
    return state_dict


def load_weights(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Strict load with a message that names every missing, unexpected or misshapen tensor."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshapen = [
        f"{key}: file {tuple(state_dict[key].shape)}, model {tuple(expected[key].shape)}"
        for key in expected
        if key in state_dict and tuple(state_dict[key].shape) != tuple(expected[key].shape)
    ]
    problems = (
        [f"missing from the file: {_listing(missing)}"] * bool(missing)
        + [f"not in the model: {_listing(unexpected)}"] * bool(unexpected)
        + [f"different shapes: {_listing(misshapen)}"] * bool(misshapen)
    )
    if problems:
        raise WeightsMismatchError(
            "These weights do not fit this architecture (" + "; ".join(problems) + "). "
            "Use the architecture the weights were trained with."
        )
    model.load_state_dict(state_dict, strict=True)


def _listing(items: list[str], most: int = 6) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _torchvision_cache_path(name: str | None) -> Path:
    url = _torchvision_weights()[name].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def save_local(model: MobileNetV2, source: WeightSource, folder: Path, stem: str, provenance: str) -> WeightSource:
    """`model`'s tensors as `stem`.pth and a JSON sidecar in `folder`, read back as a local source.

    The sidecar holds the whole architecture (an edited table too), its padding and the source's
    preprocessing at the model's resolution, so every part of the project loads the file correctly.
    """
    prep = source.preprocessing.at_resolution(model.spec.resolution)
    architecture = model.spec.to_dict()
    geometry = (
        {"central_crop_fraction": prep.central_crop_fraction}
        if prep.central_crop_fraction is not None
        else {"resize_size": prep.resize_size}
    )
    meta = {
        "file": f"{stem}.pth",
        "architecture": architecture,
        "padding": architecture.pop("padding"),
        "preprocess": {"size": prep.crop_size, "mean": list(prep.mean), "std": list(prep.std),
                       "interpolation": prep.interpolation, **geometry},
        "source": provenance,
    }
    if source.labels != IMAGENET_CATEGORIES:
        meta["labels"] = list(source.labels)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / meta["file"])
    sidecar = folder / f"{stem}.json"
    sidecar.write_text(json.dumps(meta, indent=2))
    return local_source(sidecar)
