"""Where the time goes: the measured time of every layer beside its multiply-adds, grouped by kind.

Measured with forward hooks and a wall clock around each layer (`mbv2.analysis`'s rows: a
convolution with its BatchNorm and ReLU6), not with `torch.profiler`. On the CPU every operator
has finished when it returns, so the time between a layer's pre-hook and its post-hook is that
layer's time; the profiler times operators, not layers, so its rows would have to be mapped back
to modules, and it records every operator, which costs more than two hooks per layer. What the
hooks cost is measured too: the same runs without them (`bare`), and the time no layer accounts
for (residual adds, the pooling call, the hooks themselves) is reported, not hidden.

The model is the eager one that `mbv2.latency` times (random weights: the arithmetic sets the time).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from torch import nn

from mbv2.analysis import Analysis, LayerRow, analyse
from mbv2.budget import PROCESS_BUDGET
from mbv2.cost import check_batch, forward_bytes
from mbv2.hooks import temporary_hooks
from mbv2.latency import LatencyResult, LatencySettings, Progress, measure_model
from mbv2.model import build_model
from mbv2.spec import ArchSpec

KINDS = ("stem", "expand", "depthwise", "project", "head")
_KIND_OF_LAYER = {"last conv": "head", "pool": "head", "classifier": "head"}  # the rest are their own kind
PROFILE_SETTINGS = LatencySettings(runs=10, warmup=3)


@dataclass(frozen=True)
class LayerTime:
    row: LayerRow
    median_ms: float  # over the timed runs


@dataclass(frozen=True)
class KindShare:
    kind: str  # one of KINDS
    madds: int  # paper convention
    median_ms: float
    madds_share: float  # of the network's multiply-adds, 0..1
    time_share: float  # of the sum of the layers' times, 0..1


@dataclass(frozen=True)
class LayerProfile:
    spec: ArchSpec
    layers: tuple[LayerTime, ...]  # the analysis's rows that are modules (the pooling is a function call)
    hooked: LatencyResult  # whole forward passes with the hooks on
    bare: LatencyResult  # the same without hooks, to see what they cost
    # Residual adds, the pooling call, Python between layers and the hooks: the median over runs of a run's
    # time minus its layers' times. Per run, because a run that another process interrupted is slow in both.
    unattributed_ms: float

    @property
    def layers_ms(self) -> float:
        return sum(layer.median_ms for layer in self.layers)

    def kinds(self) -> tuple[KindShare, ...]:
        madds: dict[str, int] = defaultdict(int)
        times: dict[str, float] = defaultdict(float)
        for layer in self.layers:
            kind = kind_of(layer.row)
            madds[kind] += layer.row.madds_paper
            times[kind] += layer.median_ms
        total_madds, total_ms = sum(madds.values()), self.layers_ms
        return tuple(
            KindShare(kind, madds[kind], times[kind], madds[kind] / total_madds, times[kind] / total_ms)
            for kind in KINDS
            if kind in madds
        )


def kind_of(row: LayerRow) -> str:
    return _KIND_OF_LAYER.get(row.kind, row.kind)


def profile_layers(
    spec: ArchSpec, settings: LatencySettings = PROFILE_SETTINGS, progress: Progress | None = None
) -> LayerProfile:
    """Every layer's median time over `settings.runs` forward passes (after the warm-up), and the bare pass's.

    `progress` counts the hooked runs, then the bare ones.
    """
    check_batch(spec, settings.batch_size)
    analysis = analyse(spec)
    total = 2 * (settings.warmup + settings.runs)
    model = build_model(spec).eval()
    with PROCESS_BUDGET.reserve(forward_bytes(spec, settings.batch_size)):
        with _layer_clocks(model, analysis) as samples:
            hooked = measure_model(model, spec.resolution, settings, _offset(progress, 0, total))
        bare = measure_model(model, spec.resolution, settings, _offset(progress, total // 2, total))
    timed = {module: times[settings.warmup :] for module, times in samples.items()}
    layers = tuple(LayerTime(row, statistics.median(timed[row.module])) for row in analysis.rows if row.module in timed)
    outside = [run - sum(layer) for run, *layer in zip(hooked.samples_ms, *timed.values())]
    return LayerProfile(spec, layers, hooked, bare, statistics.median(outside))


def _offset(progress: Progress | None, before: int, total: int) -> Progress | None:
    return None if progress is None else lambda done, _runs: progress(before + done, total)


@contextmanager
def _layer_clocks(model: nn.Module, analysis: Analysis) -> Iterator[dict[str, list[float]]]:
    """Hooks that append each layer's time in ms, per forward pass, under its row's module name."""
    samples: dict[str, list[float]] = defaultdict(list)
    handles = []
    modules = dict(model.named_modules())
    for row in analysis.rows:
        parts = row.module.split(" + ")
        if parts[0] not in modules:
            continue  # the pooling: a function call in forward(), no module to hook
        started: list[float] = []

        def start(_module: nn.Module, _inputs: object, started: list[float] = started) -> None:
            started.append(time.perf_counter())

        def stop(_module: nn.Module, _inputs: object, _output: object, started=started, name=row.module) -> None:
            samples[name].append((time.perf_counter() - started.pop()) * 1e3)

        handles.append(modules[parts[0]].register_forward_pre_hook(start))
        handles.append(modules[parts[-1]].register_forward_hook(stop))
    with temporary_hooks(handles):
        yield samples
