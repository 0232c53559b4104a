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
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError

import torch
from torchvision.models import MobileNet_V2_Weights
from torchvision.models._meta import _IMAGENET_CATEGORIES

from mbv2.errors import SpecError, WeightsError, WeightsMismatchError, WeightsUnavailableError
from mbv2.model import MobileNetV2
from mbv2.preprocess import Preprocessing
from mbv2.spec import ArchSpec

WEIGHTS_ENV = "MBV2_WEIGHTS"


@dataclass(frozen=True)
class WeightSource:
    name: str
    spec: ArchSpec  # the architecture (and padding) the tensors were trained with
    preprocessing: Preprocessing
    labels: tuple[str, ...]
    provenance: str
    path: Path | None = None  # a local state_dict
    torchvision_name: str | None = None  # a member of MobileNet_V2_Weights

    @property
    def is_local(self) -> bool:
        return self.path is not None

    def is_available_offline(self) -> bool:
        if self.path is not None:
            return self.path.is_file()
        return _torchvision_cache_path(self.torchvision_name).is_file()


def torchvision_source(name: str) -> WeightSource:
    """A torchvision weight set, with the transforms torchvision ships for it."""
    weights = MobileNet_V2_Weights[name]
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
        meta = json.loads(sidecar.read_text())
        arch = meta["architecture"]
        prep = meta["preprocess"]
        spec = ArchSpec.from_dict({**arch, "padding": meta.get("padding", "symmetric")})  # blocks too, if given
        preprocessing = Preprocessing(
            crop_size=int(prep["size"]),
            central_crop_fraction=prep.get("central_crop_fraction"),
            resize_size=prep.get("resize_size"),
            mean=tuple(prep["mean"]),
            std=tuple(prep["std"]),
            interpolation=prep.get("interpolation", "bilinear"),
        )
        weights_file = sidecar.parent / meta["file"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, SpecError) as error:
        raise WeightsError(
            f"Cannot read the weights description {sidecar}: {error!r}. It needs 'file', 'architecture', "
            "'preprocess' (size, mean, std, and central_crop_fraction or resize_size) and optionally 'padding'."
        ) from None
    return WeightSource(
        name=f"local {weights_file.name}",
        spec=spec,
        preprocessing=preprocessing,
        labels=_labels(meta.get("labels"), spec.num_classes, sidecar),
        provenance=f"{weights_file}: {meta.get('source', 'no source given')}",
        path=weights_file,
    )


def _labels(declared: Any, num_classes: int, sidecar: Path) -> tuple[str, ...]:
    if isinstance(declared, list) and len(declared) == num_classes:
        return tuple(str(label) for label in declared)
    if num_classes == len(_IMAGENET_CATEGORIES):
        return tuple(_IMAGENET_CATEGORIES)  # the sidecar describes ImageNet-1k in words
    raise WeightsError(f"{sidecar} must list its {num_classes} class labels under 'labels'.")


def available_sources(folders: tuple[Path, ...] = ()) -> list[WeightSource]:
    """Every source worth offering: `MBV2_WEIGHTS`, sidecars in `folders`, then torchvision's."""
    sources: list[WeightSource] = []
    if env_path := os.environ.get(WEIGHTS_ENV):
        env = Path(env_path)
        sidecars = sorted(env.glob("*.json")) if env.is_dir() else [env]
        sources += [local_source(path) for path in sidecars]
    for folder in folders:
        sources += [local_source(path) for path in sorted(Path(folder).glob("*.json"))]
    sources += [torchvision_source(member.name) for member in MobileNet_V2_Weights]
    by_name: dict[str, WeightSource] = {}
    for source in sources:
        by_name.setdefault(source.name, source)  # the first mention wins
    return list(by_name.values())


def load_state_dict(source: WeightSource, progress: bool = False) -> dict[str, torch.Tensor]:
    """The source's tensors, never unpickling anything but tensors (`weights_only=True`)."""
    if source.path is not None:
        if not source.path.is_file():
            raise WeightsError(f"The weights file {source.path} named by {source.name} does not exist.")
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
        return state_dict
    weights = MobileNet_V2_Weights[source.torchvision_name]
    try:
        return weights.get_state_dict(progress=progress, weights_only=True)
    except (URLError, OSError) as error:
        raise WeightsUnavailableError(
            f"Could not download {source.name} ({_first_line(error)}). On a machine with internet run\n"
            "  python -c \"import torchvision; torchvision.models.mobilenet_v2(weights='IMAGENET1K_V1')\"\n"
            f"to fill the cache ({_torchvision_cache_path(source.torchvision_name).parent}), or set "
            f"{WEIGHTS_ENV} to a local .pth (or its .json description)."
        ) from None


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
    url = MobileNet_V2_Weights[name].url
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
    if source.labels != tuple(_IMAGENET_CATEGORIES):
        meta["labels"] = list(source.labels)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / meta["file"])
    sidecar = folder / f"{stem}.json"
    sidecar.write_text(json.dumps(meta, indent=2))
    return local_source(sidecar)
