"""Time `mbv2.analysis.analyse`: a configuration seen for the first time, and a cached one.

Run on demand (not collected by pytest):
    .venv/bin/python benchmarks/analysis.py --threads 2

"New" clears the cache before every call, so each call builds the model and runs fvcore's
trace, as the app does when a student edits the table; "cached" repeats a seen configuration.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mbv2.analysis import analyse
from mbv2.spec import ArchSpec
from timing import interleaved_times, machine

GOALS_MS = {"new": 300.0, "cached": 50.0}  # issue 6, for 1.0/224


def analyse_new(spec: ArchSpec) -> None:
    analyse.cache_clear()
    analyse(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--resolution", type=int, default=224)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = ArchSpec(width_mult=args.width, resolution=args.resolution)

    start = time.perf_counter()
    analyse(spec)
    first_ms = (time.perf_counter() - start) * 1000
    times = interleaved_times({"new": lambda: analyse_new(spec), "cached": lambda: analyse(spec)}, args.rounds, warmup=1)
    print(f"{machine()}; {args.rounds} interleaved rounds")
    print(f"analyse(MobileNetV2 {spec.width_mult}/{spec.resolution}):")
    print(f"  first call in this process  {first_ms:9.2f} ms  (includes one-off jit and oneDNN set-up)")
    for name, values in times.items():
        milliseconds = statistics.median(values)
        verdict = "met" if milliseconds < GOALS_MS[name] else "NOT met"
        print(f"  {name + ' (median)':27} {milliseconds:9.3f} ms  goal < {GOALS_MS[name]:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
