"""Accuracy of any architecture with inherited weights, measured on a folder of real images.

- top-1 and top-5 where the folder says each image's class, in either ImageNet layout:
  flat files named `<synset>_*.JPEG` or one subfolder per synset (ImageFolder, ImageNet val);
  the class index is the synset's position in ImageNet-1k's sorted synset list (torchvision's
  order; `imagenet_synsets.txt`, the list timm ships);
- agreement: the share of images whose top class is the unedited network's, which needs no labels.

Predictions are cached on disk (`$MBV2_CACHE`, default `~/.cache/mbv2`) under a key made of the
weights file, the architecture, the inheritance options and the folder's contents (names, sizes,
modification times), so asking again costs nothing and a changed folder is measured afresh.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import torch

from mbv2.budget import PROCESS_BUDGET
from mbv2.classify import pretrained_model
from mbv2.cost import forward_bytes, largest_batch
from mbv2.device import available_cores
from mbv2.errors import EvaluationError, ImageError
from mbv2.fast import fast_model
from mbv2.images import open_image
from mbv2.inherit import RIDGE, Calibration, Correction, Inherited, calibrate, inherit, without_block
from mbv2.model import MobileNetV2
from mbv2.preprocess import Preprocessing, pixels
from mbv2.spec import ArchSpec
from mbv2.weights import WeightSource

IMAGENET_ENV = "MBV2_IMAGENET"
CALIBRATION_ENV = "MBV2_CALIBRATION"
CACHE_ENV = "MBV2_CACHE"
SYNSETS: tuple[str, ...] = tuple(Path(__file__).with_name("imagenet_synsets.txt").read_text().split())
_CLASS_OF_SYNSET = {synset: index for index, synset in enumerate(SYNSETS)}
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".webp", ".bmp", ".gif"})
# The images the app ships: the calibration set when none is named, so inheritance works anywhere.
SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "sample_images"
# More images rank channels better (4 -> 50: 17% -> 44% top-1 at t = 4 on 200 eval images) but take longer.
CALIBRATION_LIMIT = 64
# Part of every edit's cache key: change it whenever inheritance computes other weights for the same inputs.
INHERITANCE_METHOD = f"energy ranking, ridge {RIDGE}"
BATCH_SIZE = 16
TOP_K = 5
# Threads decoding images for `predict`, and how far they may run ahead of the engine.
DECODE_THREADS = min(4, available_cores())
# One-thread engine streams side by side (False: one stream on all threads, slower beside the decoders).
ENGINE_STREAMS = True
DECODED_BYTES = 32 * 2**20  # 8-bit crops decoded ahead of the engine: ~220 at 224 px, 10 at 1024 px

Progress = Callable[[int, int], None]  # (images done, images in total)


@dataclass(frozen=True)
class ImageSet:
    """Image files in a fixed order, each with its ImageNet class index if the layout gives one."""

    folder: Path
    paths: tuple[Path, ...]
    labels: tuple[int | None, ...]

    @property
    def is_labelled(self) -> bool:
        return all(label is not None for label in self.labels)

    def describe(self) -> str:
        return f"{len(self.paths)} {'labelled ' * self.is_labelled}images from {self.folder}"

    @cached_property
    def fingerprint(self) -> str:
        """Changes when any file is added, removed, renamed or rewritten."""
        digest = hashlib.sha256()
        for path in self.paths:
            stat = path.stat()
            digest.update(f"{path.relative_to(self.folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


def image_set(folder: str | os.PathLike[str], limit: int | None = None) -> ImageSet:
    """The images under `folder`; with `limit`, that many spread evenly over the sorted list."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise EvaluationError(f"No folder at {folder}. Point it at a folder of images (e.g. your ImageNet val).")
    paths = sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    if not paths:
        raise EvaluationError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    if limit is not None:
        if limit < 1:
            raise EvaluationError(f"The image limit must be at least 1, got {limit}.")
        if limit < len(paths):
            paths = [paths[i * len(paths) // limit] for i in range(limit)]
    return ImageSet(folder, tuple(paths), tuple(_class_index(path, folder) for path in paths))


def calibration_set(folder: str | os.PathLike[str] | None = None) -> ImageSet:
    """Unlabelled images that rank channels when slicing: `folder`, else `$MBV2_CALIBRATION`, else the samples."""
    chosen = folder or os.environ.get(CALIBRATION_ENV) or SAMPLE_IMAGES
    return image_set(chosen, limit=CALIBRATION_LIMIT)


def default_image_folder() -> Path | None:
    """`$MBV2_IMAGENET`, where a user keeps labelled ImageNet validation images."""
    folder = os.environ.get(IMAGENET_ENV)
    return Path(folder).expanduser() if folder else None


def _class_index(path: Path, folder: Path) -> int | None:
    """The class of `n01440764/x.JPEG` (ImageFolder) or `n01440764_tench.JPEG` (flat); None if neither."""
    relative = path.relative_to(folder)
    for candidate in (relative.parts[0] if len(relative.parts) > 1 else "", path.stem.split("_", 1)[0]):
        if candidate in _CLASS_OF_SYNSET:
            return _CLASS_OF_SYNSET[candidate]
    return None


@dataclass(frozen=True)
class Evaluation:
    """Percentages over `images` images; top-1 and top-5 only where every image has a label."""

    images: int
    folder: str
    top1: float | None
    top5: float | None
    agreement: float  # top-1 agreement with the unedited pretrained network

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        scores = f"top-1 {self.top1:.1f}%, top-5 {self.top5:.1f}%, " if self.top1 is not None else ""
        return f"{scores}agreement with the original {self.agreement:.1f}% on {self.images} images from {self.folder}"


def score(predictions: torch.Tensor, images: ImageSet, reference: torch.Tensor) -> Evaluation:
    """Percentages from (N, 5) top-5 class indices, the true labels, and the reference's top-5."""
    agreement = 100 * float((predictions[:, 0] == reference[:, 0]).double().mean())
    top1 = top5 = None
    if images.is_labelled:
        labels = torch.tensor(images.labels)
        top1 = 100 * float((predictions[:, 0] == labels).double().mean())
        top5 = 100 * float((predictions == labels[:, None]).any(dim=1).double().mean())
    return Evaluation(len(images.paths), str(images.folder), top1, top5, agreement)


@torch.inference_mode()
def predict(
    model: MobileNetV2, preprocessing: Preprocessing, images: ImageSet, progress: Progress | None = None
) -> torch.Tensor:
    """(N, 5) top-5 class indices, through the fast engine (`mbv2.fast`) in batches.

    A pool of threads decodes and crops the next images (Pillow, which releases the GIL) while the
    engine classifies, from before the engine is built, so on many images the time is the engine's;
    each batch is normalised in one step, to the same values as image by image. ONNX Runtime runs as
    many one-thread streams as torch has threads, each on its own batch.
    """
    batch_size = min(BATCH_SIZE, largest_batch(model.spec))  # 16 images of a 1024-px design would need 10 GiB
    resolution = model.spec.resolution
    # Decoded crops waiting for the engine: at least two batches, else at most DECODED_BYTES of them (a few
    # MiB beside the batch's reservation, so not reserved on their own).
    lookahead = max(2 * batch_size, DECODED_BYTES // (3 * resolution * resolution))
    paths = images.paths
    found: list[torch.Tensor] = []
    decoders = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="decode")
    pending: deque[Future[torch.Tensor]] = deque()
    submitted = 0

    def decode_ahead() -> None:
        nonlocal submitted
        while submitted < len(paths) and len(pending) < lookahead:
            pending.append(decoders.submit(_pixels, paths[submitted], preprocessing))
            submitted += 1

    def classify(batch: torch.Tensor, threads: int) -> torch.Tensor:
        with PROCESS_BUDGET.reserve(forward_bytes(model.spec, len(batch))):
            return network(batch, threads=threads).topk(TOP_K, dim=1).indices

    engines = None
    try:
        decode_ahead()  # decoding starts while the engine is being built
        threads = torch.get_num_threads()
        # ONNX Runtime: as many one-thread streams as threads, each on its own batch. Beside the decoding
        # threads, one thread held up stalls only its own stream, where one two-thread pass would wait for it.
        network = fast_model(model, threads=1 if ENGINE_STREAMS else None)
        streams = threads if network.runs_concurrently and ENGINE_STREAMS else 1
        batch_size = max(1, batch_size // streams)  # the same number of images in flight
        engines = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="engine")
        running: deque[Future[torch.Tensor]] = deque()
        done = 0
        while pending or running:
            while pending and len(running) < streams:
                pixels = [pending.popleft().result() for _ in range(min(batch_size, len(pending)))]
                decode_ahead()
                batch = preprocessing.normalise_pixels(torch.stack(pixels))
                running.append(engines.submit(classify, batch, 1 if streams > 1 else threads))
            found.append(running.popleft().result())
            done += len(found[-1])
            if progress is not None:
                progress(done, len(paths))
    finally:
        decoders.shutdown(wait=True, cancel_futures=True)  # after an error or a cancel, no decoding goes on
        if engines is not None:
            engines.shutdown(wait=True, cancel_futures=True)
    return torch.cat(found)


def _pixels(path: Path, preprocessing: Preprocessing) -> torch.Tensor:
    """One image as the model sees it, 8-bit (3, H, W), not normalised yet."""
    try:
        return pixels(preprocessing.crop(open_image(path, name=str(path))))
    except (ImageError, OSError) as error:
        raise EvaluationError(f"{error} Remove that file from the folder, or point at another folder.") from None


def _load(paths: Sequence[Path], preprocessing: Preprocessing) -> torch.Tensor:
    try:
        return torch.stack([preprocessing(open_image(path, name=str(path))) for path in paths])
    except (ImageError, OSError) as error:
        raise EvaluationError(f"{error} Remove that file from the folder, or point at another folder.") from None


def calibration_batches(images: ImageSet, preprocessing: Preprocessing) -> list[torch.Tensor]:
    return [
        _load(images.paths[start : start + BATCH_SIZE], preprocessing)
        for start in range(0, len(images.paths), BATCH_SIZE)
    ]


def calibrate_on(model: MobileNetV2, preprocessing: Preprocessing, images: ImageSet) -> Calibration:
    """`mbv2.inherit.calibrate` on a copy of `model`: its hooks must not reach a model other threads run."""
    return calibrate(copy.deepcopy(model), calibration_batches(images, preprocessing))


class Evaluator:
    """Evaluates edits of one set of pretrained weights on one image set, each edit's weights inherited.

    Thread-safe: the app shares one per (weights, folder) between all sessions.
    """

    def __init__(
        self,
        source: WeightSource,
        images: ImageSet,
        calibration_images: ImageSet | None = None,
        model: MobileNetV2 | None = None,
        calibration: Calibration | None = None,
    ):
        """`model`: the source's, already loaded; `calibration`: measured already on `calibration_images`."""
        self.source = source
        self.images = images
        self.calibration_images = calibration_images or calibration_set()
        self.model = model if model is not None else pretrained_model(source)
        self._calibration = calibration
        self._lock = threading.Lock()

    @property
    def calibration(self) -> Calibration:
        """Measured once, when the first edit needs it."""
        with self._lock:
            if self._calibration is None:
                self._calibration = calibrate_on(self.model, self.source.preprocessing, self.calibration_images)
            return self._calibration

    def inherited(
        self,
        spec: ArchSpec,
        kept_repeats: Mapping[int, Sequence[int]] | None = None,
        correction: Correction = "regression",
    ) -> Inherited:
        return inherit(self.model, spec, self.calibration, kept_repeats=kept_repeats, correction=correction)

    def reference_predictions(self, progress: Progress | None = None) -> torch.Tensor:
        return _cached(
            self._key(self.source.spec),
            lambda: predict(self.model, self.source.preprocessing, self.images, progress),
        )

    def evaluate(
        self,
        spec: ArchSpec,
        kept_repeats: Mapping[int, Sequence[int]] | None = None,
        correction: Correction = "regression",
        progress: Progress | None = None,
    ) -> Evaluation:
        """top-1 / top-5 / agreement of `spec` with inherited weights (see `mbv2.inherit.inherit`)."""
        reference = self.reference_predictions(progress)
        if spec == self.source.spec and not kept_repeats:
            return score(reference, self.images, reference)
        preprocessing = self.source.preprocessing.at_resolution(spec.resolution)
        kept = {str(row): list(repeats) for row, repeats in sorted((kept_repeats or {}).items())}
        predictions = _cached(
            self._key(spec, {"kept_repeats": kept, "correction": correction}),
            lambda: predict(self.inherited(spec, kept_repeats, correction).model, preprocessing, self.images, progress),
        )
        return score(predictions, self.images, reference)

    def _key(self, spec: ArchSpec, edit: dict | None = None) -> dict:
        """What predictions depend on: the weights, the architecture, the images, and how an edit inherited."""
        key = {"weights": _weights_identity(self.source), "spec": spec.to_dict(), "images": self.images.fingerprint}
        if edit is not None:
            key |= {"edit": edit, "calibration": self.calibration_images.fingerprint, "method": INHERITANCE_METHOD}
        return key


def _weights_identity(source: WeightSource) -> str:
    if source.path is None:
        return f"torchvision {source.torchvision_name}"
    stat = source.path.stat()
    return f"{source.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def cache_folder() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mbv2").expanduser() / "predictions"


def _cached(key: dict, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Predictions from the disk cache, or computed and stored there (a full disk only costs the reuse)."""
    text = json.dumps(key, sort_keys=True)
    path = cache_folder() / f"{hashlib.sha256(text.encode()).hexdigest()}.json"
    try:
        stored = json.loads(path.read_text())
        if stored["key"] == text:
            return torch.tensor(stored["top5"], dtype=torch.long)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    predictions = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_text(json.dumps({"key": text, "top5": predictions.tolist()}))
        partial.replace(path)  # atomic: a reader never sees half a file
    except OSError:
        pass
    return predictions


@dataclass(frozen=True)
class BlockImportance:
    """The network with one residual block left out (its other weights as they were)."""

    stage: int
    repeat: int
    evaluation: Evaluation

    @property
    def label(self) -> str:
        return f"row {self.stage}, block {self.repeat + 1}"


def block_importance(
    evaluator: Evaluator, progress: Progress | None = None
) -> tuple[Evaluation, tuple[BlockImportance, ...]]:
    """The full network's evaluation, and each residual block's when it alone is removed."""
    spec = evaluator.source.spec
    removable = [plan for plan in spec.block_plans if plan.has_residual]
    count = len(evaluator.images.paths)
    total = count * (len(removable) + 1)

    def part(number: int) -> Progress | None:
        return None if progress is None else lambda done, _count: progress(number * count + done, total)

    full = evaluator.evaluate(spec, progress=part(0))
    results = []
    for number, plan in enumerate(removable, start=1):
        shorter, kept = without_block(spec, plan.stage, plan.repeat)
        results.append(
            BlockImportance(plan.stage, plan.repeat, evaluator.evaluate(shorter, kept, progress=part(number)))
        )
    return full, tuple(results)
