"""Top-1 of edited architectures with inherited weights (no training), for the README's table.

    .venv/bin/python benchmarks/inherited_accuracy.py --weights ../shared/weights/mobilenet_v2_1.0_224_tf2_ptq.json \
        --images ../shared/imagenet-eval --calibration ../shared/imagenet-dev
"""

from __future__ import annotations

import argparse

from mbv2.evaluate import Evaluator, calibration_set, image_set
from mbv2.spec import ArchSpec, Stage
from mbv2.weights import local_source


def edits(own: ArchSpec) -> list[tuple[str, ArchSpec]]:
    """The README's rows: one repeat fewer per row, t = 4, narrower, smaller inputs."""
    rows = [
        (
            f"row {number} with n = {stage.n - 1}",
            own.replace(
                stages=own.stages[: number - 1]
                + (Stage(stage.t, stage.c, stage.n - 1, stage.s),)
                + own.stages[number:]
            ),
        )
        for number, stage in enumerate(own.stages, start=1)
        if stage.n > 1
    ]
    expansion = own.replace(stages=tuple(Stage(4 if s.t > 1 else 1, s.c, s.n, s.s) for s in own.stages))
    return (
        rows
        + [
            ("t = 4", expansion),
            ("width 0.75", own.replace(width_mult=0.75)),
            ("width 0.5", own.replace(width_mult=0.5)),
        ]
        + [(f"resolution {r}", own.replace(resolution=r)) for r in (192, 160, 128, 96)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", required=True, help="a .pth or its .json description")
    parser.add_argument("--images", required=True)
    parser.add_argument("--calibration", required=True)
    args = parser.parse_args()
    source = local_source(args.weights)
    evaluator = Evaluator(source, image_set(args.images), calibration_set(args.calibration))
    own = evaluator.evaluate(source.spec)
    print("| architecture | top-1 regression | top-1 mean | top-1 none |\n| --- | --- | --- | --- |")
    print(f"| the weights' own (1.0/224) | {own.top1:.1f} | | |")
    for name, spec in edits(source.spec):
        sliced = "sliced" in evaluator.inherited(spec).report.counts()  # only then does the correction matter
        corrections = ("regression", "mean", "none") if sliced else ("regression",)
        cells = [f"{evaluator.evaluate(spec, correction=c).top1:.1f}" for c in corrections] + [""] * (
            3 - len(corrections)
        )
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{evaluator.images.describe()}; calibration: {evaluator.calibration_images.describe()}")


if __name__ == "__main__":
    main()
