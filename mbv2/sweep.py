"""Design-space sweeps on Dask's distributed scheduler: many architectures, one row each.

Every row holds `mbv2.compare.summarise` of its configuration (counts in both conventions,
parameters, peak activation memory) and, on request, top-1 / top-5 / agreement with inherited
weights (`mbv2.evaluate.Evaluator`) and measured latency (`mbv2.latency`).

Where the work runs:
- an existing cluster (`scheduler="tcp://host:8786"`, started with `dask scheduler` and
  `dask worker`): weights and images must be at the same paths on every worker;
- else a `LocalCluster` of `workers` processes (one thread each: the parallelism is across
  processes, and torch in each would otherwise oversubscribe the cores);
- or, for one worker, this process (no start-up, nothing to pickle between processes).
A task whose worker dies is rescheduled by Dask; one that raises is retried `TASK_RETRIES` times.
Latencies taken while other workers run are slowed by them: time with one worker per machine.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from mbv2.compare import NamedConfig, size_name, summarise
from mbv2.errors import SettingsError, SpecError
from mbv2.evaluate import Evaluation, Evaluator, ImageSet
from mbv2.inherit import Correction
from mbv2.jsonfile import parse_json, read_json_file
from mbv2.latency import LatencySettings, measure_spec
from mbv2.spec import ArchSpec
from mbv2.sweeptable import FIELDS, Row, spec_key
from mbv2.weights import WeightSource

if TYPE_CHECKING:  # distributed itself is imported only when a sweep starts
    from distributed import Client

MAX_POINTS = 1000  # about ten minutes of counting on two cores; larger grids are usually a typo in a list
MAX_WORKERS = 8  # each local worker process holds torch and fvcore, about 0.9 GiB
TASK_RETRIES = 2
SCHEDULER_TIMEOUT_S = 10


@dataclass(frozen=True)
class SweepPoint:
    width_mult: float
    resolution: int
    expansion: int  # replaces t in every row that expands (the paper's first row keeps t = 1)
    repeats: tuple[tuple[int, int], ...] = ()  # (row, n): the row's repeats replaced, rows counted from 1

    def config(self, base: ArchSpec) -> NamedConfig:
        stages = [stage if stage.t == 1 else replace(stage, t=self.expansion) for stage in base.stages]
        for row, n in self.repeats:
            if not 1 <= row <= len(stages):
                raise SpecError([f"Row {row} has no repeats to set: the table has rows 1 to {len(stages)}."])
            stages[row - 1] = replace(stages[row - 1], n=n)
        spec = base.replace(stages=tuple(stages), width_mult=self.width_mult, resolution=self.resolution)
        repeats = "".join(f" n{row}={n}" for row, n in self.repeats)
        return NamedConfig(f"{size_name(self.width_mult, self.resolution)} t={self.expansion}{repeats}", spec)


def grid(
    widths: Iterable[float],
    resolutions: Iterable[int],
    expansions: Iterable[int],
    repeats: Mapping[int, Sequence[int]] | None = None,
) -> list[SweepPoint]:
    """Every combination; `repeats` maps a row (from 1) to the values of n to try for it."""
    rows = sorted((repeats or {}).items())
    choices = itertools.product(*[[(row, n) for n in values] for row, values in rows])
    return [
        SweepPoint(width, resolution, expansion, chosen)
        for width, resolution, expansion, chosen in itertools.product(widths, resolutions, expansions, list(choices))
    ]


def configs_from_file(path: Path) -> list[NamedConfig]:
    """Architectures from a JSON list of spec objects, or JSON lines (one per line); an optional "name" each."""
    try:
        if path.suffix.lower() == ".jsonl":
            items = [parse_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            items = read_json_file(path)
    except OSError as error:
        raise SpecError([f"Cannot read the specs file {path}: {error.strerror}."]) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SpecError([f"Cannot read the specs file {path}: {error}"]) from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise SpecError([f"The specs file {path} must hold a JSON list of spec objects, or one object per line."])
    configs = []
    for number, item in enumerate(items, start=1):
        fields = dict(item)
        name = fields.pop("name", None)
        try:
            spec = ArchSpec.from_dict(fields)
        except SpecError as error:
            raise SpecError([f"Spec {number} in {path}: {problem}" for problem in error.problems]) from None
        configs.append(NamedConfig(str(name or f"#{number} {size_name(spec.width_mult, spec.resolution)}"), spec))
    return configs


@dataclass(frozen=True)
class AccuracyJob:
    """What every configuration is scored on: inherited `source` weights, classifying `images`."""

    source: WeightSource
    images: ImageSet
    calibration: ImageSet
    correction: Correction = "regression"


@dataclass(frozen=True)
class Measurements:
    """What is measured beyond the counts; None: not measured."""

    accuracy: AccuracyJob | None = None
    latency: LatencySettings | None = None


def measure(config: NamedConfig, measurements: Measurements) -> Row:
    """One configuration's row; runs on a Dask worker."""
    latency = measure_spec(config.spec, measurements.latency) if measurements.latency else None
    summary = summarise(config, latency)
    accuracy = measurements.accuracy
    evaluation = _evaluator(accuracy).evaluate(config.spec, correction=accuracy.correction) if accuracy else None
    return sweep_row(summary.as_row(), config.spec, evaluation)


def sweep_row(counted: Row, spec: ArchSpec, evaluation: Evaluation | None) -> Row:
    scores = {"top1": None, "top5": None, "agreement": None, "images": None}
    if evaluation is not None:
        scores = {name: getattr(evaluation, name) for name in scores}
    values = {**counted, **scores, "spec": spec_key(spec.to_dict())}
    return {field: values[field] for field in FIELDS}


@lru_cache(maxsize=2)
def _evaluator(job: AccuracyJob) -> Evaluator:
    """One per worker process and job: the weights are loaded and the channels ranked once, not per task."""
    return Evaluator(job.source, job.images, job.calibration)


def checked_workers(configs: Sequence[NamedConfig], workers: int | None) -> int:
    """The number of local workers to start; refuses a grid or a worker count above the limits."""
    if len(configs) > MAX_POINTS:
        raise SettingsError(
            f"The grid has {len(configs):,} points; the limit is {MAX_POINTS:,}. Sweep fewer widths, resolutions, "
            "expansions or repeats, or split the grid into several sweeps."
        )
    most = min(os.cpu_count() or 1, MAX_WORKERS)
    if workers is not None and not 1 <= workers <= most:
        raise SettingsError(
            f"Workers must be between 1 and {most} (this machine's cores, at most {MAX_WORKERS}), got {workers}. "
            "For more, start a cluster with `dask scheduler` and `dask worker` and pass its address."
        )
    return max(1, min(workers or most, len(configs)))


def run(
    configs: Sequence[NamedConfig],
    measurements: Measurements = Measurements(),
    workers: int | None = None,
    scheduler: str | None = None,
) -> Iterator[Row]:
    """The rows of `configs` as they are finished, in no particular order."""
    local_workers = checked_workers(configs, workers)
    if not configs:
        return
    with _client(scheduler, local_workers) as client:
        from distributed import as_completed

        futures = client.map(measure, configs, measurements=measurements, retries=TASK_RETRIES, pure=False)
        for future in as_completed(futures):
            yield future.result()


@contextmanager
def _client(scheduler: str | None, workers: int) -> Iterator[Client]:
    # Imported here: distributed takes a second to import, and only a sweep needs it.
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError) as error:
            raise SettingsError(
                f"Cannot reach the Dask scheduler at {scheduler} ({error}). Start one with `dask scheduler` and "
                "pass the address it prints, e.g. tcp://10.0.0.5:8786."
            ) from None
        with client:
            yield client
        return
    # Port 0 everywhere: the scheduler's HTTP server would otherwise take 8787, or warn when another sweep has it.
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=workers > 1,
        dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as client:
        yield client

