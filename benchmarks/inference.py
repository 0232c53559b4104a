"""Latency of one image and of a batch of 8: torchvision's mobilenet_v2, ours eager, ours fast, compiled.

Run on demand (not collected by pytest):
    .venv/bin/python benchmarks/inference.py --threads 2

All are 1.0/224 in eval mode with random weights (speed does not depend on their values).
The eager models are called as `model(images)`, autograd on, as a plain eval-mode model is;
torchvision is also timed under `torch.inference_mode`, to show what that part alone gives.
The fast path brings its own inference mode and runs where the app's would (the GPU when
there is one). The compiled fast path is compiled once per batch size before timing; the
time that takes is printed. Ours uses the padding of the shared TF weights (`tf_same`) unless told otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from mbv2.fast import fast_model
from mbv2.model import build_model
from mbv2.spec import PADDINGS, ArchSpec
from timing import interleaved_times, machine, median_ratio

GOAL = 0.40  # issue 6: the fast path at most 0.40x torchvision eager for one image on 2 threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=60, help="timed calls of each model per batch size")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--padding", choices=PADDINGS, default="tf_same")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    torchvision_model = torchvision.models.mobilenet_v2().eval()
    eager = build_model(ArchSpec(padding=args.padding))
    fast = fast_model(eager)
    compiled = fast_model(eager, compile=True)
    baseline, ours_fast = "(a) torchvision eager", f"(c) mbv2 fast ({args.padding}, {fast.device})"
    ours_compiled = "(d) mbv2 fast + torch.compile"
    print(f"{machine()}; {args.rounds} interleaved rounds")
    print(f"{'model':42} {'batch':>5} {'median ms':>10} {'x (a)':>7}   (x (a): median of the ratios within a round)")
    for batch in (1, 8):
        images = torch.randn(batch, 3, 224, 224)
        started = time.perf_counter()
        compiled(images)
        print(f"compiling for batch {batch} took {time.perf_counter() - started:.1f} s (once per shape and process)")
        times = interleaved_times(
            {
                baseline: lambda: torchvision_model(images),
                "(a') torchvision eager, inference_mode": lambda: _in_inference_mode(torchvision_model, images),
                f"(b) mbv2 eager ({args.padding})": lambda: eager(images),
                ours_fast: lambda: fast(images),
                ours_compiled: lambda: compiled(images),
            },
            args.rounds,
            args.warmup,
        )
        for name, values in times.items():
            print(f"{name:42} {batch:>5} {statistics.median(values):10.2f} {median_ratio(times, name, baseline):7.2f}")
        if batch == 1:
            for name in (ours_fast, ours_compiled):
                met = median_ratio(times, name, baseline) <= GOAL
                print(f"goal {name} <= {GOAL:.2f}x torchvision for one image: {'met' if met else 'NOT met'}")


@torch.inference_mode()
def _in_inference_mode(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    return model(images)


if __name__ == "__main__":
    main()
