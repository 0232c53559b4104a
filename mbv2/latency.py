"""Wall-clock latency on this machine, of the engine that classifies (`mbv2.fast`): warm-up, then N runs.

A measurement, never an estimate: the result carries the batch size, the thread count, the engine
and the machine it was taken on, because a latency without them cannot be compared. Several
configurations are timed together, in interleaved rounds (each round runs every one once, starting
one later each round), so a neighbour's load that comes and goes falls on all of them alike. The
median comes with its spread (the interquartile range); a wide spread says the machine was busy,
and the result says so (`LatencyResult.warning`).
"""

from __future__ import annotations

import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from mbv2.budget import PROCESS_BUDGET
from mbv2.cost import check_batch, forward_bytes
from mbv2.device import available_cores
from mbv2.errors import SettingsError
from mbv2.fast import fast_model
from mbv2.model import build_model
from mbv2.spec import ArchSpec

Progress = Callable[[int, int], None]  # (runs done, runs in total), warm-up included
# torch's thread count is process-wide: two measurements at once would each restore the other's
# setting (leaving the process on one thread) and time each other's work, so they take turns.
_ONE_MEASUREMENT_AT_A_TIME = threading.Lock()
# Above this interquartile range, as a share of the median, the machine was busy with other work.
BUSY_SPREAD = 0.15


@dataclass(frozen=True)
class LatencySettings:
    runs: int = 20
    warmup: int = 3
    batch_size: int = 1
    threads: int = field(default_factory=available_cores)  # all the cores this process may use, as a classifier

    def __post_init__(self) -> None:
        for name, low in (("runs", 1), ("warmup", 0), ("batch_size", 1), ("threads", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise SettingsError(f"Latency {name} must be a whole number of at least {low}, got {value!r}.")


@dataclass(frozen=True)
class LatencyResult:
    settings: LatencySettings
    samples_ms: tuple[float, ...]  # one per timed run, in the order they ran
    machine: str
    engine: str = "PyTorch eager"  # what ran the model, e.g. "ONNX Runtime 1.31.1 (CPU)"

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def spread_ms(self) -> tuple[float, float]:
        return min(self.samples_ms), max(self.samples_ms)

    @property
    def quartiles_ms(self) -> tuple[float, float]:
        """The first and third quartiles: the middle half of the runs took between these."""
        if len(self.samples_ms) < 2:
            return self.samples_ms[0], self.samples_ms[0]
        first, _, third = statistics.quantiles(self.samples_ms, n=4, method="inclusive")
        return first, third

    @property
    def iqr_ms(self) -> float:
        first, third = self.quartiles_ms
        return third - first

    @property
    def warning(self) -> str | None:
        """Why not to trust this number much, if the runs say so."""
        share = self.iqr_ms / self.median_ms if self.median_ms > 0 else 0.0
        if share <= BUSY_SPREAD:
            return None
        return (
            f"The runs spread widely (IQR {share:.0%} of the median): the machine was busy with other work "
            "while measuring. Compare these times with care, or measure again when it is quieter."
        )

    def describe(self) -> str:
        first, third = self.quartiles_ms
        low, high = self.spread_ms
        s = self.settings
        return (
            f"median {self.median_ms:.1f} ms (IQR {first:.1f}-{third:.1f}, min {low:.1f}, max {high:.1f}) over "
            f"{s.runs} runs after {s.warmup} warm-up, batch {s.batch_size}, {s.threads} thread{'s' * (s.threads > 1)}, "
            f"{self.engine}, {self.machine}"
        )


def machine_description() -> str:
    return f"{_cpu_name()} ({os.cpu_count()} logical cores), torch {torch.__version__}"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine()


def measure_model(
    model: nn.Module, resolution: int, settings: LatencySettings, progress: Progress | None = None
) -> LatencyResult:
    """Time `model` on a fixed random batch; `progress` is called after every run."""
    return measure_models([(model, resolution)], settings, progress)[0]


@torch.inference_mode()
def measure_models(
    models: Sequence[tuple[nn.Module, int]], settings: LatencySettings, progress: Progress | None = None
) -> list[LatencyResult]:
    """Time each (model, input resolution) in interleaved rounds; `progress` is called after every run."""
    machine = machine_description()
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(settings.batch_size, 3, size, size, generator=generator) for _, size in models]
    total = (settings.warmup + settings.runs) * len(models)
    samples: list[list[float]] = [[] for _ in models]
    done = 0
    with _ONE_MEASUREMENT_AT_A_TIME, _threads(settings.threads):
        for model, _ in models:
            prepare = getattr(model, "prepare", None)
            if prepare is not None:  # e.g. ONNX Runtime's pool for this thread count, made before any timing
                prepare()
        for round_ in range(settings.warmup + settings.runs):
            shift = round_ % len(models)
            for index in list(range(shift, len(models))) + list(range(shift)):
                start = time.perf_counter()
                models[index][0](batches[index])
                elapsed_ms = (time.perf_counter() - start) * 1e3
                if round_ >= settings.warmup:  # the first runs pay for allocation and kernel selection
                    samples[index].append(elapsed_ms)
                done += 1
                if progress is not None:
                    progress(done, total)
    return [
        LatencyResult(settings=settings, samples_ms=tuple(times), machine=machine, engine=_engine(model))
        for (model, _), times in zip(models, samples)
    ]


def measure_spec(spec: ArchSpec, settings: LatencySettings, progress: Progress | None = None) -> LatencyResult:
    """Latency of the architecture with random weights: the arithmetic, not the values, sets the time."""
    return measure_specs([spec], settings, progress)[0]


def measure_specs(
    specs: Sequence[ArchSpec], settings: LatencySettings, progress: Progress | None = None
) -> list[LatencyResult]:
    """Latency of each architecture (random weights) on the engine that classifies, in interleaved rounds.

    A batch too large for memory is refused before anything is built (`mbv2.cost.check_batch`).
    They run one at a time, so the largest forward pass is what is reserved.
    """
    for spec in specs:
        check_batch(spec, settings.batch_size)
    with PROCESS_BUDGET.reserve(max(forward_bytes(spec, settings.batch_size) for spec in specs)):
        # ONNX Runtime's pool is sized when a session is made: made here for the measurement's thread count.
        models = [(fast_model(build_model(spec), threads=settings.threads), spec.resolution) for spec in specs]
        return measure_models(models, settings, progress)


class _threads:
    """torch's (process-wide) thread count set for a while, then put back."""

    def __init__(self, count: int):
        self.count = count

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        torch.set_num_threads(self.count)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)


def _engine(model: nn.Module) -> str:
    return getattr(model, "engine", None) or f"PyTorch {torch.__version__.split('+')[0]} eager"
