"""A grid over width, resolution and expansion t, each point analysed in a worker process.

Every row is exactly `mbv2.compare.summarise` of that configuration. Sweeps count, they do
not time: processes running side by side would slow each other and corrupt the latencies.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mbv2.compare import ConfigSummary, NamedConfig, label, summarise
from mbv2.errors import SettingsError
from mbv2.spec import ArchSpec

Progress = Callable[[int, int], None]  # (points done, points in total)
MAX_POINTS = 1000  # about ten minutes on two cores; larger grids are usually a typo in a list
MAX_WORKERS = 8  # each worker process holds torch and fvcore, about 0.9 GiB


@dataclass(frozen=True)
class SweepPoint:
    width_mult: float
    resolution: int
    expansion: int  # replaces t in every row that expands (the paper's first row keeps t = 1)

    def config(self, base: ArchSpec) -> NamedConfig:
        blocks = tuple(block if block.t == 1 else replace(block, t=self.expansion) for block in base.blocks)
        spec = base.replace(blocks=blocks, width_mult=self.width_mult, resolution=self.resolution)
        return NamedConfig(f"{label(self.width_mult, self.resolution)} t={self.expansion}", spec)


@dataclass(frozen=True)
class SweepRow:
    point: SweepPoint
    summary: ConfigSummary

    def record(self) -> dict[str, object]:
        counted = {key: value for key, value in self.summary.record().items() if not key.startswith("latency_")}
        return {"t": self.point.expansion, **counted}


def grid(widths: Iterable[float], resolutions: Iterable[int], expansions: Iterable[int]) -> list[SweepPoint]:
    return [SweepPoint(*values) for values in itertools.product(widths, resolutions, expansions)]


def sweep(
    points: list[SweepPoint], base: ArchSpec = ArchSpec(), workers: int | None = None, progress: Progress | None = None
) -> list[SweepRow]:
    """Rows in the order of `points`; every configuration is validated before any process starts."""
    if len(points) > MAX_POINTS:
        raise SettingsError(
            f"The grid has {len(points):,} points; the limit is {MAX_POINTS:,}. Sweep fewer widths, resolutions "
            "or expansions, or split the grid into several sweeps."
        )
    most = min(os.cpu_count() or 1, MAX_WORKERS)
    if workers is not None and not 1 <= workers <= most:
        raise SettingsError(
            f"Workers must be between 1 and {most} (this machine's cores, at most {MAX_WORKERS}), got {workers}."
        )
    configs = [point.config(base) for point in points]  # raises SpecError for an impossible point
    workers = max(1, min(workers or most, len(configs)))
    summaries: list[ConfigSummary | None] = [None] * len(configs)
    if workers == 1:
        for index, config in enumerate(configs):
            summaries[index] = summarise(config)
            if progress is not None:
                progress(index + 1, len(configs))
    else:
        # spawn, not fork: a forked child of a process that already ran torch can deadlock in OpenMP.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread_per_worker) as pool:
            futures = {pool.submit(summarise, config): index for index, config in enumerate(configs)}
            for done, future in enumerate(as_completed(futures), start=1):
                summaries[futures[future]] = future.result()
                if progress is not None:
                    progress(done, len(configs))
    return [SweepRow(point, summary) for point, summary in zip(points, summaries)]


def _one_thread_per_worker() -> None:
    torch.set_num_threads(1)  # the parallelism is across processes; more threads would oversubscribe the cores


def to_csv(rows: list[SweepRow]) -> str:
    records = [row.record() for row in rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else [])
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def to_json(rows: list[SweepRow]) -> str:
    return json.dumps([row.record() for row in rows], indent=2)


FORMATS: dict[str, Callable[[list[SweepRow]], str]] = {".csv": to_csv, ".json": to_json}


def check_writable(path: Path) -> None:
    """Refuse, before a sweep computes anything, a place its table could not be written to."""
    if path.suffix.lower() not in FORMATS:
        raise SettingsError(f"The table's file must end in {' or '.join(FORMATS)}, got {path}.")
    if not path.parent.is_dir():
        raise SettingsError(f"The folder {path.parent} does not exist; create it first, or write the table elsewhere.")
    if path.is_dir():
        raise SettingsError(f"{path} is a folder; give a file name ending in {' or '.join(FORMATS)}.")


def write(rows: list[SweepRow], path: Path) -> None:
    """CSV or JSON, chosen by the file's extension (one of FORMATS)."""
    path.write_text(FORMATS[path.suffix.lower()](rows))
