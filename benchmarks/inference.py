"""The fast path against torchvision eager, in one run, on the goals of issue 13:

1. one image (and a batch of 8): torchvision's mobilenet_v2, ours eager, ours fast on each engine,
   side by side in interleaved rounds; goal: the default engine in at most 0.30x torchvision's time;
2. the first call of a freshly built fast model (`fast_model(model)` + one image), each in a fresh
   process with the real weights loaded; goal: within 3 s;
3. `mbv2 evaluate` on a folder (the 700 images of ../shared/imagenet-eval), process start to result,
   against a naive one-image-at-a-time Pillow + torchvision eager loop (benchmarks/naive_evaluate.py)
   in interleaved rounds; goal: at most 0.35x, with the same top-1.

Run on demand (not collected by pytest):
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/inference.py --threads 2

Part 1 uses 1.0/224 models in eval mode with random weights (speed does not depend on their values).
The eager models are called as `model(images)`, autograd on, as a plain eval-mode model is;
torchvision is also timed under `torch.inference_mode`, to show what that part alone gives.
`--compiled` adds the torch engine under torch.compile and `--aoti` an inductor AOT package
(compiled once, cached on disk); the time each takes to prepare is printed. Ours uses the padding
of the shared TF weights (`tf_same`) unless told otherwise. Parts 2 and 3 run with
OMP_NUM_THREADS=--threads, so torch and ONNX Runtime use that many threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

from mbv2.fast import fast_model, fold_batchnorm
from mbv2.model import build_model
from mbv2.spec import PADDINGS, ArchSpec
from timing import interleaved_times, machine, median_ratio

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ONE_IMAGE_GOAL = 0.30  # issue 13: the fast path at most 0.30x torchvision eager for one image on 2 threads
FIRST_CALL_GOAL_S = 3.0  # build + first inference of a fresh fast model
EVALUATE_GOAL = 0.35  # `mbv2 evaluate`, process start to result, against the naive loop

FIRST_CALL = """
import sys, time
import torch
from mbv2.classify import pretrained_model
from mbv2.fast import fast_model
from mbv2.weights import local_source
model = pretrained_model(local_source(sys.argv[1]))
images = torch.randn(1, 3, model.spec.resolution, model.spec.resolution)
started = time.perf_counter()
fast = fast_model(model)
fast(images)
print(time.perf_counter() - started, fast.engine, sep="\\t")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=60, help="timed calls of each model per batch size")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--padding", choices=PADDINGS, default="tf_same")
    parser.add_argument("--compiled", action="store_true", help="also time the torch engine under torch.compile")
    parser.add_argument("--aoti", action="store_true", help="also time an inductor AOT package (cached on disk)")
    parser.add_argument("--first-calls", type=int, default=3, help="fresh processes timing a first call")
    parser.add_argument("--eval-rounds", type=int, default=1, help="rounds of (naive loop, mbv2 evaluate); 0: skip")
    parser.add_argument("--parts", default="123", help="which of the three parts to run, e.g. 13")
    parser.add_argument("--weights", type=Path, default=SHARED / "weights" / "mobilenet_v2_1.0_224_tf2_ptq.json")
    parser.add_argument("--images", type=Path, default=SHARED / "imagenet-eval")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{machine()}; load average before: {_load()}")
    if "1" in args.parts:
        one_image(args)
    if "2" in args.parts:
        first_calls(args)
    if "3" in args.parts and args.eval_rounds:
        evaluate(args)
    print(f"load average after: {_load()}")


def one_image(args: argparse.Namespace) -> None:
    torchvision_model = torchvision.models.mobilenet_v2().eval()
    eager = build_model(ArchSpec(padding=args.padding))
    on_torch = fast_model(eager, engine="torch")
    default = fast_model(eager)
    baseline, ours = "(a) torchvision eager", f"(e) mbv2 fast, default: {default.engine}"
    extra: dict[str, object] = {}
    if args.compiled:
        extra["(d) mbv2 fast, torch engine + torch.compile"] = fast_model(eager, compile=True)
    if args.aoti:
        extra["(f) inductor AOT package (folded)"] = _aoti_package(eager)
    print(f"\n1. {args.rounds} interleaved rounds, {args.padding} padding for ours")
    print(f"{'model':58} {'batch':>5} {'median ms':>10} {'x (a)':>7}   (x (a): median of the ratios within a round)")
    for batch in (1, 8):
        images = torch.randn(batch, 3, 224, 224)
        for name, model in extra.items():
            started = time.perf_counter()
            _call(model, images)
            print(f"{name}: first call for batch {batch} took {time.perf_counter() - started:.1f} s")
        candidates = {
            baseline: lambda: torchvision_model(images),
            "(a') torchvision eager, inference_mode": lambda: _in_inference_mode(torchvision_model, images),
            f"(b) mbv2 eager ({args.padding})": lambda: eager(images),
            f"(c) mbv2 fast, {on_torch.engine}": lambda: on_torch(images),
            ours: lambda: default(images),
        } | {name: (lambda model=model: _call(model, images)) for name, model in extra.items()}
        times = interleaved_times(candidates, args.rounds, args.warmup)
        for name, values in times.items():
            print(f"{name:58} {batch:>5} {statistics.median(values):10.2f} {median_ratio(times, name, baseline):7.2f}")
        if batch == 1:
            ratio = median_ratio(times, ours, baseline)
            quartiles = statistics.quantiles([m / b for m, b in zip(times[ours], times[baseline])], n=4)
            verdict = "met" if ratio <= ONE_IMAGE_GOAL else "NOT met"
            print(
                f"goal: one image in <= {ONE_IMAGE_GOAL:.2f}x torchvision eager: {ratio:.2f}x "
                f"(ratios' IQR {quartiles[0]:.2f}-{quartiles[2]:.2f}): {verdict}"
            )


def first_calls(args: argparse.Namespace) -> None:
    print(f"\n2. build + first inference of a fresh fast model, real weights, {args.first_calls} fresh processes")
    seconds = []
    for _ in range(args.first_calls):
        done = subprocess.run(
            [sys.executable, "-c", FIRST_CALL, str(args.weights)],
            capture_output=True, text=True, env=_environment(args.threads), cwd=ROOT, check=True,
        )
        took, engine = done.stdout.strip().splitlines()[-1].split("\t")
        seconds.append(float(took))
        print(f"   {float(took):.2f} s ({engine})")
    worst = max(seconds)
    print(f"goal: first call within {FIRST_CALL_GOAL_S:.0f} s: slowest {worst:.2f} s, median "
          f"{statistics.median(seconds):.2f} s: {'met' if worst <= FIRST_CALL_GOAL_S else 'NOT met'}")


def evaluate(args: argparse.Namespace) -> None:
    naive = [sys.executable, str(ROOT / "benchmarks" / "naive_evaluate.py"), str(args.weights), str(args.images)]
    ours = [sys.executable, "-m", "mbv2.cli", "evaluate", "--images", str(args.images), "--weights",
            str(args.weights), "--json"]
    print(f"\n3. process start to result on {args.images}, {args.eval_rounds} interleaved round(s), "
          f"OMP_NUM_THREADS={args.threads}, an empty prediction cache each time")
    ratios, cpu_ratios = [], []
    for round_ in range(args.eval_rounds):
        runs = {"naive Pillow + torchvision eager loop": naive, "mbv2 evaluate": ours}
        order = list(runs) if round_ % 2 == 0 else list(reversed(runs))
        results = {name: _timed(runs[name], args.threads) for name in order}
        for name, (seconds, cpu, result) in results.items():
            print(f"   {name:40} {seconds:6.1f} s  ({cpu:5.1f} s of CPU)  top-1 {result['top1']:.2f}%  "
                  f"({result['images']} images)")
        (naive_s, naive_cpu, naive_result), (ours_s, ours_cpu, ours_result) = (results[name] for name in runs)
        ratios.append(ours_s / naive_s)
        cpu_ratios.append(ours_cpu / naive_cpu)
        same = ours_result["top1"] == naive_result["top1"]
        print(f"   ratio {ours_s / naive_s:.2f}x ({ours_cpu / naive_cpu:.2f}x in CPU time), "
              f"top-1 {'the same' if same else 'DIFFERENT'}")
    ratio = statistics.median(ratios)
    print(f"goal: mbv2 evaluate <= {EVALUATE_GOAL:.2f}x the naive loop: {ratio:.2f}x "
          f"({statistics.median(cpu_ratios):.2f}x in CPU time, which a busy machine disturbs less): "
          f"{'met' if ratio <= EVALUATE_GOAL else 'NOT met'}")


def _timed(command: list[str], threads: int) -> tuple[float, float, dict]:
    """Wall-clock seconds from process start to its result, its CPU seconds, and the JSON it printed."""
    with tempfile.TemporaryDirectory() as cache:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=_environment(threads, cache), cwd=ROOT)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def _environment(threads: int, cache: str | None = None) -> dict[str, str]:
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    if cache is not None:
        environment["MBV2_CACHE"] = cache
    return environment


def _aoti_package(eager: torch.nn.Module):
    """The folded model, batch dynamic, compiled by AOTInductor into a package cached on disk."""
    folded = fold_batchnorm(eager)
    cache = Path(os.environ.get("MBV2_CACHE") or Path.home() / ".cache" / "mbv2").expanduser() / "aoti"
    package = cache / f"mbv2-{eager.spec.padding}-torch{torch.__version__}.pt2"
    if not package.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        batch = torch.export.Dim("batch", min=1, max=64)
        with torch.no_grad():
            program = torch.export.export(folded, (torch.randn(2, 3, 224, 224),), dynamic_shapes=({0: batch},))
        torch._inductor.aoti_compile_and_package(
            program, package_path=str(package), inductor_configs={"freezing": True}
        )
        print(f"(f) AOT compilation took {time.perf_counter() - started:.1f} s (once per architecture, then cached)")
    started = time.perf_counter()
    loaded = torch._inductor.aoti_load_package(str(package))
    print(f"(f) loading the cached package took {time.perf_counter() - started:.2f} s")
    return loaded


@torch.inference_mode()
def _call(model, images: torch.Tensor) -> torch.Tensor:
    return model(images)


@torch.inference_mode()
def _in_inference_mode(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    return model(images)


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
