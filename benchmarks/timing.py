"""Interleaved timing for the benchmarks.

On a shared machine a neighbour's load comes and goes; calling every candidate once per
round spreads it over all of them alike, and a ratio taken within each round cancels it.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from mbv2.latency import machine_description


def interleaved_times(candidates: dict[str, Callable[[], object]], rounds: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds of each call; each round calls every candidate once, starting one later each round."""
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(warmup + rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = time.perf_counter()
            candidates[name]()
            elapsed = (time.perf_counter() - start) * 1000
            if round_ >= warmup:
                times[name].append(elapsed)
    return times


def median_ratio(times: dict[str, list[float]], name: str, baseline: str) -> float:
    """Median over rounds of name's time over baseline's time in the same round."""
    return statistics.median(mine / base for mine, base in zip(times[name], times[baseline]))


def machine() -> str:
    return (
        f"{machine_description()}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )
