"""The `mbv2` command: the library's views without the app."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from tqdm import tqdm

from mbv2.analysis import CONVENTIONS
from mbv2.classify import classify, pretrained_model
from mbv2.compare import PRESET_RESOLUTIONS, PRESET_WIDTHS, TF_SLIM_SOURCE, NamedConfig, label, summarise
from mbv2.device import available_cores
from mbv2.distill import DistillationSettings, recover
from mbv2.errors import EvaluationError, MBV2Error, SettingsError, SpecError, WeightsUnavailableError
from mbv2.evaluate import (
    CALIBRATION_ENV,
    CALIBRATION_LIMIT,
    IMAGENET_ENV,
    Evaluator,
    block_importance,
    calibration_set,
    default_image_folder,
    image_set,
)
from mbv2.export import seeded_model, write_all
from mbv2.fast import fast_model
from mbv2.images import open_image
from mbv2.inherit import CORRECTIONS
from mbv2.jsonfile import read_json_file
from mbv2.latency import LatencySettings, measure_spec
from mbv2.spec import ArchSpec
from mbv2.sweep import FORMATS, check_writable, grid, sweep, write
from mbv2.weights import (
    WEIGHTS_ENV,
    WeightSource,
    available_sources,
    environment_sources,
    local_source,
    sources_in_folder,
)


def _spec_file(path: str | None, default: ArchSpec = ArchSpec()) -> ArchSpec:
    """The architecture in a JSON file, or `default` (the paper's) when there is none."""
    if path is None:
        return default
    try:
        data = read_json_file(path)
    except OSError as error:
        raise SpecError([f"Cannot read the spec file {path}: {error.strerror}."]) from None
    except ValueError as error:
        raise SpecError([f"Cannot read the spec file {path}: {error}"]) from None
    if not isinstance(data, dict):
        raise SpecError([f"The spec file {path} must hold a JSON object with fields such as blocks and width_mult."])
    return ArchSpec.from_dict(data)


def _spec(args: argparse.Namespace, default: ArchSpec = ArchSpec()) -> ArchSpec:
    """--spec FILE (or `default`), with --width and --resolution applied on top."""
    spec = _spec_file(args.spec, default)
    changes = {"width_mult": args.width, "resolution": args.resolution}
    return spec.replace(**{name: value for name, value in changes.items() if value is not None})


def _weight_source(path: str | None) -> WeightSource:
    """--weights PATH, else the first source usable offline (MBV2_WEIGHTS first, then torchvision's cache)."""
    if path is not None:
        folder = Path(path)
        if not folder.is_dir():
            return local_source(folder)
        sources = sources_in_folder(folder)
        if not sources:
            raise WeightsUnavailableError(f"{folder} holds no .json weights description; point --weights at one.")
        return sources[0]
    # MBV2_WEIGHTS first, on its own: listing torchvision's sources imports torchvision (a second).
    offline = [source for source in environment_sources() if source.is_available_offline()]
    offline = offline or [source for source in available_sources() if source.is_available_offline()]
    if not offline:
        raise WeightsUnavailableError(
            f"No pretrained weights are available offline. Pass --weights PATH (a .pth or its .json description), "
            f"set {WEIGHTS_ENV}, or fill torchvision's cache on a machine with internet."
        )
    return offline[0]


def _progress_bar(description: str):
    """A tqdm bar on stderr behind the library's (done, total) progress callback."""
    bars: list[tqdm] = []  # made when a count starts, when the total is known

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(desc=description, total=total, file=sys.stderr, leave=False))
        bars[0].update(done - bars[0].n)
        if done == total:
            bars.pop().close()  # a later count (the next phase of the same job) gets a fresh bar

    return update


def _summary(args: argparse.Namespace) -> int:
    spec = _spec(args)
    latency = None
    if args.latency:
        threads = {"threads": args.threads} if args.threads is not None else {}  # default: all cores
        settings = LatencySettings(runs=args.runs, warmup=args.warmup, batch_size=args.batch, **threads)
        latency = measure_spec(spec, settings, _progress_bar("timing"))
    summary = summarise(NamedConfig("summary", spec), latency)
    print(f"MobileNetV2 {label(spec.width_mult, spec.resolution)}: {summary.params:,} parameters")
    for convention, meaning in CONVENTIONS.items():
        madds = summary.madds_paper if convention == "paper" else summary.madds_fvcore
        print(f"  {madds / 1e6:8.1f}M multiply-adds  ({meaning})")
    print(
        f"  {summary.peak_activation_bytes / 2**20:8.2f} MiB peak activations (float32, batch 1, "
        f"at {summary.peak_activation_layer})"
    )
    if latency is not None:
        print(f"  latency on this CPU: {latency.describe()}")
        if latency.warning is not None:
            print(f"  warning: {latency.warning}")
    if (reference := summary.reference) is not None:
        print(
            f"  published: {reference.macs_m:g}M MACs, {reference.params_m}M params, top-1 {reference.top1}%, "
            f"top-5 {reference.top5}%, Pixel 1 {reference.pixel1_ms} ms\n    (source: {TF_SLIM_SOURCE})"
        )
    return 0


def _classify(args: argparse.Namespace) -> int:
    source = _weight_source(args.weights)
    model = fast_model(pretrained_model(source), compile=args.compile)
    print(f"weights: {source.name} ({source.provenance})")
    failures = 0
    for path in args.images:
        try:
            predictions = classify(model, source, open_image(path, name=path), k=args.top)
        except OSError as error:
            print(f"error: cannot read {path}: {error.strerror}", file=sys.stderr)
            failures += 1
            continue
        except MBV2Error as error:  # one unreadable file should not hide the others' results
            print(f"error: {one_line(str(error))}", file=sys.stderr)
            failures += 1
            continue
        print(path)
        for rank, prediction in enumerate(predictions, start=1):
            print(f"  {rank}. {prediction.label:<40} {prediction.probability:7.2%}")
    return 2 if failures else 0


def _evaluate(args: argparse.Namespace) -> int:
    source = _weight_source(args.weights)
    spec = _spec(args, default=source.spec)  # without --spec: the weights' own architecture
    folder = args.images or default_image_folder()
    if folder is None:
        raise EvaluationError(f"Name a folder of images with --images DIR, or set {IMAGENET_ENV} to your ImageNet val.")
    evaluator = Evaluator(source, image_set(folder, args.limit), calibration_set(args.calibration))
    progress = _progress_bar("evaluating")
    inheritance = None if spec == source.spec else evaluator.inherited(spec, correction=args.correction).report
    if args.block_importance:
        full, blocks = block_importance(evaluator, progress)
        results = {"full": full.to_dict(), "without": {block.label: block.evaluation.to_dict() for block in blocks}}
        if args.json:
            print(json.dumps(results))
            return 0
        metric = "top1" if full.top1 is not None else "agreement"
        print(f"{source.name} on {evaluator.images.describe()}: {full.describe()}")
        for block in blocks:
            value = getattr(block.evaluation, metric)
            print(f"  without {block.label:<16} {metric} {value:5.1f}%  ({value - getattr(full, metric):+.1f})")
        return 0
    evaluation = evaluator.evaluate(spec, correction=args.correction, progress=progress)
    if args.json:
        print(json.dumps({**evaluation.to_dict(), "inheritance": inheritance.summary() if inheritance else None}))
        return 0
    print(f"MobileNetV2 {label(spec.width_mult, spec.resolution)} with {source.name}")
    if inheritance is not None:
        print(f"  inherited weights, no training: {inheritance.summary()}")
    print(f"  {evaluation.describe()}")
    return 0


def _recover(args: argparse.Namespace) -> int:
    source = _weight_source(args.weights)
    spec = _spec(args, default=source.spec)
    folder = args.eval_images or default_image_folder()
    if folder is None:
        raise EvaluationError(f"Name labelled images to measure on with --eval-images DIR, or set {IMAGENET_ENV}.")
    training = image_set(args.images)
    evaluator = Evaluator(source, image_set(folder, args.limit), calibration_set(args.images))
    settings = DistillationSettings(steps=args.steps, batch_size=args.batch)
    bar = tqdm(total=settings.steps, desc="distilling", file=sys.stderr, leave=False)

    def show(step: int, _total: int, loss: float) -> None:
        bar.set_postfix(loss=f"{loss:.3f}")
        bar.update(step - bar.n)

    recovery = recover(evaluator, spec, training, Path(args.out), settings, show)
    bar.close()
    print(f"MobileNetV2 {label(spec.width_mult, spec.resolution)} from {source.name}, distilled for {settings.steps} "
          f"steps of {settings.batch_size} images from {training.folder} in {recovery.seconds:.0f} s")
    print(f"  before (inherited): {recovery.before.describe()}")
    print(f"  after (distilled):  {recovery.after.describe()}")
    print(f"  saved: {recovery.saved.path} (+ .json); use it with --weights {args.out}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    if args.out is not None:
        check_writable(args.out)  # before the sweep computes anything, not after
    points = grid(args.widths, args.resolutions, args.expansions)
    progress = _progress_bar(f"{len(points)} configurations")
    rows = sweep(points, base=_spec_file(args.spec), workers=args.workers, progress=progress)
    print(f"{'width':>6} {'res':>4} {'t':>3} {'params':>11} {'MAdds paper':>13} {'MAdds fvcore':>13} {'peak MiB':>9}")
    for row in rows:
        s = row.summary
        print(
            f"{float(s.spec.width_mult):>6} {s.spec.resolution:>4} {row.point.expansion:>3} {s.params:>11,} "
            f"{s.madds_paper:>13,} {s.madds_fvcore:>13,} {s.peak_activation_bytes / 2**20:>9.2f}"
        )
    if args.out is not None:
        try:
            write(rows, args.out)
        except OSError as error:
            raise SettingsError(f"Cannot write {args.out}: {error.strerror}.") from None
        print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def _export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.weights is not None and (args.spec, args.width, args.resolution) != (None, None, None):
        parser.error("--weights fixes the architecture; leave out --spec, --width and --resolution")
    if args.weights is not None:
        source = _weight_source(args.weights)
        model, origin = pretrained_model(source), f"pretrained weights {source.name}"
    else:
        model, origin = seeded_model(_spec(args)), "random weights (seed 0)"
    spec = model.spec
    name = label(spec.width_mult, spec.resolution)
    files = write_all(model, Path(args.out), stem="mobilenet_v2_" + name.replace("/", "_"))
    print(f"MobileNetV2 {name} with {origin}:")
    for kind, path in (
        ("TorchScript (traced)", files.torchscript),
        ("root operators (YAML)", files.operators),
        ("ONNX", files.onnx),
        ("spec (JSON)", files.spec),
    ):
        print(f"  {kind:<22} {path}")
    return 0


def _at_least(low: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in "invalid whole number value: 'x'"
    return parse


_positive_int = _at_least(1)


def _table_file(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(f"must end in {' or '.join(FORMATS)}, got {text}")
    return path


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error (exit status 2, as argparse's)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def one_line(message: str) -> str:
    """A library message, whose problems may be listed one per line, as one line for a terminal."""
    joined = re.sub(r":\s*\n- ", ": ", message.strip())
    joined = re.sub(r"(?<=[.!?])\s*\n(?:- )?", " ", joined)  # problems that end a sentence
    return re.sub(r"\s*\n(?:- )?", "; ", joined)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mbv2", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    spec_file = argparse.ArgumentParser(add_help=False)
    spec_file.add_argument("--spec", help="an architecture as JSON (as the app and `mbv2 export` write it)")
    spec_options = argparse.ArgumentParser(add_help=False, parents=[spec_file])
    spec_options.add_argument("--width", type=float, help="width multiplier (default 1.0, or the spec file's)")
    spec_options.add_argument("--resolution", type=int, help="input side in pixels (default 224, or the spec file's)")
    weights_help = (
        f"a .pth, its .json description or a folder of them (default: ${WEIGHTS_ENV}, else the first source "
        "found offline)"
    )

    summary = commands.add_parser(
        "summary", parents=[spec_options], help="parameters, multiply-adds, peak memory and (optionally) latency"
    )
    summary.add_argument(
        "--latency", action="store_true", help="also measure latency on the engine that classifies (a few seconds)"
    )
    summary.add_argument("--runs", type=_positive_int, default=20, help="timed runs; the median is reported")
    summary.add_argument("--warmup", type=_at_least(0), default=3, help="untimed runs first")
    summary.add_argument("--batch", type=_positive_int, default=1, help="images per run")
    summary.add_argument(
        "--threads", type=_positive_int, help=f"CPU threads during the timing (default: all, {available_cores()} here)"
    )
    summary.set_defaults(run=_summary)

    classify_command = commands.add_parser("classify", help="top-k ImageNet classes of images")
    classify_command.add_argument("images", nargs="+", metavar="IMAGE")
    classify_command.add_argument("--weights", help=weights_help)
    classify_command.add_argument("--top", type=_positive_int, default=5, help="classes to show per image")
    classify_command.add_argument(
        "--compile",
        action="store_true",
        help="run the torch engine under torch.compile instead of ONNX Runtime: up to ~25 s of compilation "
        "first, and no faster (kept for comparison; see the README's Speed section)",
    )
    classify_command.set_defaults(run=_classify)

    evaluate = commands.add_parser(
        "evaluate",
        parents=[spec_options],
        help="top-1 / top-5 on labelled images and agreement with the original, with inherited weights",
        description="Without --spec, --width or --resolution: the weights' own architecture. Any other "
        "architecture gets the pretrained weights copied, grown or sliced (mbv2.inherit), with no training.",
    )
    evaluate.add_argument("--weights", help=weights_help)
    evaluate.add_argument(
        "--images",
        help=f"a folder of <synset>_*.JPEG files or of <synset>/ subfolders (default: ${IMAGENET_ENV}); "
        "unlabelled images give the agreement only",
    )
    evaluate.add_argument("--limit", type=_positive_int, help="use this many images, spread over the folder")
    evaluate.add_argument(
        "--calibration",
        help=f"unlabelled images that rank channels when slicing, {CALIBRATION_LIMIT} at most "
        f"(default: ${CALIBRATION_ENV}, else the sample images)",
    )
    evaluate.add_argument("--correction", choices=list(CORRECTIONS), default="regression",
                          help="how sliced channels are made up for (default: regression)")
    evaluate.add_argument("--block-importance", action="store_true",
                          help="also evaluate the weights' own network with each residual block removed in turn")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    evaluate.set_defaults(run=_evaluate)

    recover_command = commands.add_parser(
        "recover", parents=[spec_options],
        help="distil an edited network from the original on unlabelled images, save it, top-1 before and after",
    )
    recover_command.add_argument("--weights", help=weights_help)
    recover_command.add_argument("--images", required=True, help="unlabelled images to distil on (any photos)")
    recover_command.add_argument(
        "--eval-images", help=f"labelled images to measure on, disjoint from --images (default: ${IMAGENET_ENV})"
    )
    recover_command.add_argument("--limit", type=_positive_int, help="measure on this many images, spread out")
    recover_command.add_argument("--steps", type=_positive_int, default=DistillationSettings.steps)
    recover_command.add_argument("--batch", type=_positive_int, default=DistillationSettings.batch_size)
    recover_command.add_argument("--out", default="recovered", help="folder for the .pth and its .json (default: recovered)")
    recover_command.set_defaults(run=_recover)

    sweep_command = commands.add_parser(
        "sweep", parents=[spec_file], help="counts over a grid of width x resolution x t, in parallel processes"
    )
    sweep_command.add_argument("--widths", type=float, nargs="+", default=list(PRESET_WIDTHS))
    sweep_command.add_argument("--resolutions", type=int, nargs="+", default=list(PRESET_RESOLUTIONS))
    sweep_command.add_argument(
        "--expansions", type=int, nargs="+", default=[6], help="t for every row that expands (a t = 1 row stays 1)"
    )
    sweep_command.add_argument("--workers", type=_positive_int, help="processes (default: one per CPU core)")
    sweep_command.add_argument("--out", type=_table_file, help="write the rows to FILE.csv or FILE.json")
    sweep_command.set_defaults(run=_sweep)

    export = commands.add_parser(
        "export", parents=[spec_options], help="TorchScript, root-operator YAML, ONNX and spec JSON into a folder"
    )
    export.add_argument("--out", required=True, help="folder to write the four files into")
    export.add_argument("--weights", help=f"export these pretrained weights instead of random ones: {weights_help}")
    export.set_defaults(run=lambda args: _export(args, export))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return args.run(args)
    except MBV2Error as error:
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        return 2


def run() -> None:
    """The `mbv2` command: `main`, then an exit that skips tearing the interpreter down.

    With torch and ONNX Runtime loaded, that teardown took another 0.5 s after the result was out.
    Everything a command writes is closed by the time it returns; the output streams are flushed here.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
