"""Wall-clock CPU latency of a model on this machine: warm-up runs, then the median of N runs.

A measurement, never an estimate: the result carries the batch size, the thread count and
the machine it was taken on, because a latency without them cannot be compared.
"""

from __future__ import annotations

import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mbv2.budget import PROCESS_BUDGET
from mbv2.cost import check_batch, forward_bytes
from mbv2.errors import SettingsError
from mbv2.model import build_model
from mbv2.spec import ArchSpec

Progress = Callable[[int, int], None]  # (runs done, runs in total), warm-up included
# torch's thread count is process-wide: two measurements at once would each restore the other's
# setting (leaving the process on one thread) and time each other's work, so they take turns.
_ONE_MEASUREMENT_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class LatencySettings:
    runs: int = 20
    warmup: int = 3
    batch_size: int = 1
    threads: int = 1  # one thread: the number least disturbed by whatever else the machine runs

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

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def spread_ms(self) -> tuple[float, float]:
        return min(self.samples_ms), max(self.samples_ms)

    def describe(self) -> str:
        low, high = self.spread_ms
        s = self.settings
        return (
            f"median {self.median_ms:.2f} ms (min {low:.2f}, max {high:.2f}) over {s.runs} runs after "
            f"{s.warmup} warm-up, batch {s.batch_size}, {s.threads} thread{'s' * (s.threads > 1)}, {self.machine}"
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


@torch.inference_mode()
def measure_model(
    model: nn.Module, resolution: int, settings: LatencySettings, progress: Progress | None = None
) -> LatencyResult:
    """Time `model` on a fixed random batch; `progress` is called after every run."""
    machine = machine_description()
    batch = torch.randn(settings.batch_size, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    total = settings.warmup + settings.runs
    samples: list[float] = []
    with _ONE_MEASUREMENT_AT_A_TIME:
        threads = torch.get_num_threads()
        torch.set_num_threads(settings.threads)  # process-wide, so it is put back afterwards
        try:
            for run in range(total):
                start = time.perf_counter()
                model(batch)
                elapsed_ms = (time.perf_counter() - start) * 1e3
                if run >= settings.warmup:  # the first runs pay for allocation and kernel selection
                    samples.append(elapsed_ms)
                if progress is not None:
                    progress(run + 1, total)
        finally:
            torch.set_num_threads(threads)
    return LatencyResult(settings=settings, samples_ms=tuple(samples), machine=machine)


def measure_spec(spec: ArchSpec, settings: LatencySettings, progress: Progress | None = None) -> LatencyResult:
    """Latency of the architecture with random weights: the arithmetic, not the values, sets the time.

    A batch too large for memory is refused before anything is built (`mbv2.cost.check_batch`).
    """
    check_batch(spec, settings.batch_size)
    with PROCESS_BUDGET.reserve(forward_bytes(spec, settings.batch_size)):
        return measure_model(build_model(spec), spec.resolution, settings, progress)
