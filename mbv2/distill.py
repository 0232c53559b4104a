"""Recover an edited network by knowledge distillation from the original (Hinton et al., 2015).

The student (the edited architecture with inherited weights) learns to match the teacher's
(the unedited pretrained network's) temperature-softened class probabilities on unlabelled
images, with the standard augmentation (random resized crop, horizontal flip). No labels
are needed, so any folder of photos will do.

BatchNorm stays in eval mode: its statistics are never re-estimated (weights with BatchNorm
folded in, like the shared TF ones, carry none), only every weight and bias is trained.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from mbv2.budget import PROCESS_BUDGET
from mbv2.cost import MAX_WORKING_BYTES, gibibytes, traced_bytes
from mbv2.device import inference_device
from mbv2.errors import EvaluationError, ResourceError
from mbv2.evaluate import Evaluation, Evaluator, ImageSet, predict, score
from mbv2.fast import fast_model
from mbv2.images import open_image
from mbv2.model import MobileNetV2
from mbv2.preprocess import Preprocessing
from mbv2.spec import ArchSpec
from mbv2.weights import WeightSource, save_local

StepProgress = Callable[[int, int, float], None]  # (steps done, steps in total, this step's loss)


@dataclass(frozen=True)
class DistillationSettings:
    """The defaults show a clear gain in about 2 minutes on 2 CPU cores: width 0.75 went from 32% to 42%
    top-1 on the 50 dev images after 100 steps on the eval images (60 steps: 38%; a rate of 3e-4 lost accuracy)."""

    steps: int = 100
    batch_size: int = 16
    learning_rate: float = 1e-4
    temperature: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"Distillation {name} must be a whole number of at least 1.")
        if not self.learning_rate > 0 or not self.temperature > 0:
            raise ValueError("Distillation learning rate and temperature must be positive.")


def distill(
    teacher: MobileNetV2,
    student: MobileNetV2,
    preprocessing: Preprocessing,
    images: ImageSet,
    settings: DistillationSettings = DistillationSettings(),
    progress: StepProgress | None = None,
) -> list[float]:
    """Train `student` in place to imitate `teacher`; the loss of every step, in order.

    `preprocessing` gives the normalisation both networks were trained with; each sees the same
    random crop, at its own resolution. Raising from `progress` stops the training (a cancel).
    """
    # Backward keeps every intermediate, as a trace does: the same estimate, per image of the batch.
    working_bytes = traced_bytes(student.spec) * settings.batch_size
    if working_bytes > MAX_WORKING_BYTES:
        raise ResourceError(
            f"Distilling this design in batches of {settings.batch_size} would need about "
            f"{gibibytes(working_bytes)}; the limit is {gibibytes(MAX_WORKING_BYTES)}. Use a batch of at most "
            f"{max(1, MAX_WORKING_BYTES // traced_bytes(student.spec))}, or a smaller design."
        )
    with PROCESS_BUDGET.reserve(working_bytes):  # heavy requests queue instead of multiplying memory
        return _train(teacher, student, preprocessing, images, settings, progress)


def _train(
    teacher: MobileNetV2,
    student: MobileNetV2,
    preprocessing: Preprocessing,
    images: ImageSet,
    settings: DistillationSettings,
    progress: StepProgress | None,
) -> list[float]:
    device = inference_device()
    teacher_logits = fast_model(teacher, device)  # a folded copy: the shared teacher is never moved or changed
    student = student.to(device).eval()
    optimiser = torch.optim.AdamW(student.parameters(), lr=settings.learning_rate, weight_decay=0.0)
    losses: list[float] = []
    batches = _augmented_batches(images, preprocessing, student.spec.resolution, settings)
    with torch.random.fork_rng():
        torch.manual_seed(settings.seed)  # the same crops for the same settings
        for step in range(1, settings.steps + 1):
            losses.append(_step(teacher_logits, student, optimiser, next(batches).to(device), preprocessing, settings))
            if progress is not None:
                progress(step, settings.steps, losses[-1])
    student.cpu().eval()
    return losses


def _step(
    teacher: torch.nn.Module,
    student: MobileNetV2,
    optimiser: torch.optim.Optimizer,
    crops: torch.Tensor,
    preprocessing: Preprocessing,
    settings: DistillationSettings,
) -> float:
    """One step of KL divergence between temperature-softened distributions (scaled by T², as Hinton et al.)."""
    temperature = settings.temperature
    with torch.no_grad():
        teacher_input = F.interpolate(crops, size=teacher.spec.resolution, mode="bilinear", antialias=True)
        targets = F.softmax(teacher(_normalise(teacher_input, preprocessing)).to(crops.device) / temperature, dim=1)
    logits = student(_normalise(crops, preprocessing)) / temperature
    loss = F.kl_div(F.log_softmax(logits, dim=1), targets, reduction="batchmean") * temperature**2
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.item()


def _normalise(batch: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    mean = torch.tensor(preprocessing.mean, device=batch.device)[:, None, None]
    std = torch.tensor(preprocessing.std, device=batch.device)[:, None, None]
    return (batch - mean) / std


def _augmented_batches(
    images: ImageSet, preprocessing: Preprocessing, resolution: int, settings: DistillationSettings
) -> Iterator[torch.Tensor]:
    """Endless batches of random crops in [0, 1], the next one decoded in a thread while this one trains."""
    from torchvision.transforms import v2  # only here: importing torchvision costs every command a second

    augment = v2.Compose(
        [
            v2.RandomResizedCrop(resolution, interpolation=v2.InterpolationMode(preprocessing.interpolation)),
            v2.RandomHorizontalFlip(),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    chooser = random.Random(settings.seed)

    def batch() -> torch.Tensor:
        paths = chooser.choices(images.paths, k=settings.batch_size)
        try:
            return torch.stack([augment(open_image(path, name=str(path))) for path in paths])
        except (OSError, ValueError) as error:
            raise EvaluationError(f"Cannot train on {images.folder}: {error}") from None

    with ThreadPoolExecutor(max_workers=1) as decoder:
        pending = decoder.submit(batch)
        while True:
            ready = pending.result()
            pending = decoder.submit(batch)
            yield ready


@dataclass(frozen=True)
class Recovery:
    before: Evaluation  # the inherited weights
    after: Evaluation  # the same network after distillation
    losses: tuple[float, ...]
    seconds: float
    saved: WeightSource


def recover(
    evaluator: Evaluator,
    spec: ArchSpec,
    training_images: ImageSet,
    folder: Path,
    settings: DistillationSettings = DistillationSettings(),
    progress: StepProgress | None = None,
) -> Recovery:
    """Inherit `spec` from the evaluator's weights, distil it, save it in `folder`, and measure it before and after
    on the evaluator's images (keep them disjoint from `training_images`)."""
    before = evaluator.evaluate(spec)
    student = evaluator.inherited(spec).model
    start = time.perf_counter()
    losses = distill(evaluator.model, student, evaluator.source.preprocessing, training_images, settings, progress)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256(spec.to_json().encode()).hexdigest()[:8]  # two edits at one width/resolution differ
    name = f"mobilenet_v2_{spec.width_mult}_{spec.resolution}_{digest}_distilled"
    saved = save_local(
        student, evaluator.source, folder, name,
        f"{evaluator.source.name} inherited into this architecture, then distilled from it for {settings.steps} steps "
        f"of {settings.batch_size} images from {training_images.folder}",
    )
    predictions = predict(student, saved.preprocessing, evaluator.images)
    after = score(predictions, evaluator.images, evaluator.reference_predictions())
    return Recovery(before, after, tuple(losses), seconds, saved)
