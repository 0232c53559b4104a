"""The `mbv2` command: the library's views without the app."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from mbv2.analysis import CONVENTIONS, LayerRow, analyse
from mbv2.classify import classify, pretrained_model
from mbv2.compare import (
    PRESET_RESOLUTIONS, PRESET_WIDTHS, TF_SLIM_SOURCE, ConfigSummary, NamedConfig, export_stem, size_name, summarise,
)
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
from mbv2.layertime import LayerProfile, profile_layers
from mbv2.spec import ArchSpec
from mbv2.sweep import AccuracyJob, Measurements, configs_from_file, grid
from mbv2.sweep import run as run_sweep  # `run` is the mbv2 command below
from mbv2.sweeptable import SUFFIXES, Row, appender, check_table_path, done_specs, spec_key
from mbv2.weights import (
    WEIGHTS_ENV,
    WeightSource,
    available_sources,
    environment_sources,
    sources_at,
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
        raise SpecError([f"The spec file {path} must hold a JSON object with fields such as stages and width_mult."])
    return ArchSpec.from_dict(data)


def _spec(args: argparse.Namespace, default: ArchSpec = ArchSpec()) -> ArchSpec:
    """--spec FILE (or `default`), with --width and --resolution applied on top."""
    spec = _spec_file(args.spec, default)
    changes = {"width_mult": args.width, "resolution": args.resolution}
    return spec.replace(**{name: value for name, value in changes.items() if value is not None})


def _weight_source(path: str | None) -> WeightSource:
    """--weights PATH, else the first source usable offline (MBV2_WEIGHTS first, then torchvision's cache)."""
    if path is not None:
        sources = sources_at(path)
        if not sources:  # only a folder can name none
            raise WeightsUnavailableError(f"{Path(path)} holds no .json weights description; point --weights at one.")
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
    settings = _latency_settings(args)
    latency = measure_spec(spec, settings, _progress_bar("timing")) if settings is not None else None
    summary = summarise(NamedConfig("summary", spec), latency)
    layers = analyse(spec).rows if args.layers else None
    if args.json:
        print(json.dumps(_summary_json(spec, summary, layers), indent=2))
        return 0
    if layers is not None:
        print(_layer_table(layers))
    print(f"MobileNetV2 {size_name(spec.width_mult, spec.resolution)}: {summary.params:,} parameters")
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
    if args.profile:
        _print_profile(profile_layers(spec, _timing_settings(args), _progress_bar("timing each layer")))
    if (reference := summary.reference) is not None:
        print(
            f"  published: {reference.macs_m:g}M MACs, {reference.params_m}M params, top-1 {reference.top1}%, "
            f"top-5 {reference.top5}%, Pixel 1 {reference.pixel1_ms} ms\n    (source: {TF_SLIM_SOURCE})"
        )
    return 0


def _print_profile(profile: LayerProfile) -> None:
    print(f"  time per layer kind, measured (eager model, random weights; {profile.hooked.describe()}):")
    print(f"    {'kind':<10} {'MAdds':>8} {'share':>6} {'time':>10} {'share':>6}")
    for kind in profile.kinds():
        print(f"    {kind.kind:<10} {kind.madds / 1e6:>7.1f}M {kind.madds_share:>6.1%} {kind.median_ms:>7.2f} ms "
              f"{kind.time_share:>6.1%}")
    print(f"    in no layer (residual adds, pooling, hooks): {profile.unattributed_ms:.2f} ms; the whole pass "
          f"{profile.hooked.median_ms:.2f} ms with the timing hooks, {profile.bare.median_ms:.2f} ms without")


def _layer_table(layers: tuple[LayerRow, ...]) -> str:
    """One line per layer, as torchinfo prints a model: where it lives, what it is, shapes, parameters, MAdds."""
    header = f"{'module':<38} {'kind':<10} {'input (N, C, H, W)':<22} {'output':<22} {'params':>10} {'MAdds':>13}"
    lines = [header, "-" * len(header)]
    for row in layers:
        lines.append(
            f"{row.module:<38} {row.kind:<10} {str(row.input_shape):<22} {str(row.output_shape):<22} "
            f"{row.params:>10,} {row.madds_paper:>13,}"
        )
    return "\n".join(lines + ["-" * len(header), "MAdds: the paper's convention (convolutions and classifier).", ""])


def _summary_json(spec: ArchSpec, summary: ConfigSummary, layers: tuple[LayerRow, ...] | None) -> dict:
    summary_json = {
        "spec": spec.to_dict(),
        "params": summary.params,
        "madds_paper": summary.madds_paper,
        "madds_fvcore": summary.madds_fvcore,
        "peak_activation_bytes": summary.peak_activation_bytes,
        "peak_activation_layer": summary.peak_activation_layer,
        "latency_ms": None if summary.latency is None else summary.latency.median_ms,
    }
    if layers is not None:
        # A layer's block plan follows from "spec" above; the layers keep to what was measured.
        summary_json["layers"] = [{name: value for name, value in asdict(row).items() if name != "plan"} for row in layers]
    return summary_json


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
    print(f"MobileNetV2 {size_name(spec.width_mult, spec.resolution)} with {source.name}")
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
    print(f"MobileNetV2 {size_name(spec.width_mult, spec.resolution)} from {source.name}, distilled for "
          f"{settings.steps} steps of {settings.batch_size} images from {training.folder} in {recovery.seconds:.0f} s")
    print(f"  before (inherited): {recovery.before.describe()}")
    print(f"  after (distilled):  {recovery.after.describe()}")
    print(f"  saved: {recovery.saved.path} (+ .json); use it with --weights {args.out}")
    return 0


def _timing_settings(args: argparse.Namespace) -> LatencySettings:
    threads = {"threads": args.threads} if args.threads is not None else {}  # default: all cores
    return LatencySettings(runs=args.runs, warmup=args.warmup, batch_size=args.batch, **threads)


def _latency_settings(args: argparse.Namespace) -> LatencySettings | None:
    """--runs, --warmup, --batch, --threads when --latency is on."""
    return _timing_settings(args) if args.latency else None


def _accuracy_job(args: argparse.Namespace) -> AccuracyJob | None:
    """--images (with --weights, --limit, --calibration, --correction), or None when no images are named."""
    if args.images is None:
        if args.weights is not None:
            raise SettingsError("--weights scores each configuration only with --images DIR: name the images too.")
        return None
    source = _weight_source(args.weights)
    return AccuracyJob(source, image_set(args.images, args.limit), calibration_set(args.calibration), args.correction)


def _sweep(args: argparse.Namespace) -> int:
    if args.out is not None:
        check_table_path(args.out)  # before the sweep computes anything, not after
    measurements = Measurements(accuracy=_accuracy_job(args), latency=_latency_settings(args))
    if args.specs is not None:
        configs = configs_from_file(Path(args.specs))
    else:
        # Scored sweeps take the weights' padding, so that inheriting them loses nothing to a shifted grid.
        base = _spec_file(args.spec, measurements.accuracy.source.spec if measurements.accuracy else ArchSpec())
        repeats = {row: values for row, *values in args.repeats or []}
        if not all(repeats.values()):
            raise SettingsError("--repeats takes a row and at least one n, e.g. --repeats 4 2 3 4.")
        configs = [point.config(base) for point in grid(args.widths, args.resolutions, args.expansions, repeats)]
    done = done_specs(args.out) if args.out is not None else frozenset()
    pending = [config for config in configs if spec_key(config.spec.to_dict()) not in done]
    skipped = f" ({len(configs) - len(pending)} already in {args.out})" if len(pending) < len(configs) else ""
    progress = _progress_bar(f"{len(pending)} configurations{skipped}")
    rows: dict[str, Row] = {}
    with appender(args.out) if args.out is not None else nullcontext() as append:
        for row in run_sweep(pending, measurements, workers=args.workers, scheduler=args.scheduler):
            if append is not None:
                append(row)
            rows[str(row["spec"])] = row
            progress(len(rows), len(pending))
    _print_rows([rows[key] for config in pending if (key := spec_key(config.spec.to_dict())) in rows])
    if args.out is not None:
        print(f"wrote {len(rows)} rows to {args.out}{skipped}")
    return 0


def _print_rows(rows: list[Row]) -> None:
    columns = {  # heading: (width, how one row's value is shown)
        "configuration": (-28, lambda row: row["name"]),
        "params": (11, lambda row: f"{row['params']:,}"),
        "MAdds paper": (13, lambda row: f"{row['madds_paper']:,}"),
        "MAdds fvcore": (13, lambda row: f"{row['madds_fvcore']:,}"),
        "peak MiB": (9, lambda row: f"{row['peak_activation_bytes'] / 2**20:.2f}"),
        "top-1 %": (8, lambda row: "" if row["top1"] is None else f"{row['top1']:.1f}"),
        "agree %": (8, lambda row: "" if row["agreement"] is None else f"{row['agreement']:.1f}"),
        "ms": (8, lambda row: "" if row["latency_median_ms"] is None else f"{row['latency_median_ms']:.2f}"),
    }
    print(" ".join(f"{heading:{'<' if width < 0 else '>'}{abs(width)}}" for heading, (width, _) in columns.items()))
    for row in rows:
        print(" ".join(f"{show(row):{'<' if width < 0 else '>'}{abs(width)}}" for width, show in columns.values()))


def _export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    architecture_asked = (args.spec, args.width, args.resolution) != (None, None, None)
    if args.weights is not None and architecture_asked:
        parser.error("--weights fixes the architecture; leave out --spec, --width and --resolution")
    # As the help says, $MBV2_WEIGHTS stands in for --weights; an architecture asked for gets random weights.
    weights = args.weights or (None if architecture_asked else os.environ.get(WEIGHTS_ENV) or None)
    if weights is not None:
        source = _weight_source(weights)
        model, origin = pretrained_model(source), f"pretrained weights {source.name}"
    else:
        model, origin = seeded_model(_spec(args)), "random weights (seed 0)"
    spec = model.spec
    name = size_name(spec.width_mult, spec.resolution)
    files = write_all(model, Path(args.out), stem=export_stem(spec.width_mult, spec.resolution))
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
    if path.suffix.lower() not in SUFFIXES:
        raise argparse.ArgumentTypeError(f"must end in {' or '.join(SUFFIXES)}, got {text}")
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


def _add_accuracy_options(parser: argparse.ArgumentParser, images_note: str) -> None:
    parser.add_argument(
        "--images",
        help=f"a folder of <synset>_*.JPEG files or of <synset>/ subfolders{images_note}; "
        "unlabelled images give the agreement only",
    )
    parser.add_argument("--limit", type=_positive_int, help="use this many images, spread over the folder")
    parser.add_argument(
        "--calibration",
        help=f"unlabelled images that rank channels when slicing, {CALIBRATION_LIMIT} at most "
        f"(default: ${CALIBRATION_ENV}, else the sample images)",
    )
    parser.add_argument("--correction", choices=list(CORRECTIONS), default="regression",
                        help="how sliced channels are made up for (default: regression)")


def _add_latency_options(parser: argparse.ArgumentParser, latency_help: str) -> None:
    parser.add_argument("--latency", action="store_true", help=latency_help)
    parser.add_argument("--runs", type=_positive_int, default=20, help="timed runs; the median is reported")
    parser.add_argument("--warmup", type=_at_least(0), default=3, help="untimed runs first")
    parser.add_argument("--batch", type=_positive_int, default=1, help="images per run")
    parser.add_argument(
        "--threads", type=_positive_int, help=f"CPU threads during the timing (default: all, {available_cores()} here)"
    )


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
    _add_latency_options(summary, "also measure latency on the engine that classifies (a few seconds)")
    summary.add_argument(
        "--profile", action="store_true",
        help="also measure each layer's time beside its multiply-adds, by kind (with --runs, --warmup, --threads)",
    )
    summary.add_argument("--layers", action="store_true", help="also every layer: shapes, parameters, multiply-adds")
    summary.add_argument("--json", action="store_true", help="print JSON instead of text")
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
    _add_accuracy_options(evaluate, f" (default: ${IMAGENET_ENV})")
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
        "sweep", parents=[spec_file],
        help="a grid of width x resolution x t x n, or a file of specs: counts, and top-1 and latency on request",
        description="Runs on Dask: on the cluster at --scheduler, else on --workers local processes. With --out, "
        "each row is appended as it arrives and a rerun skips the configurations already in the file.",
    )
    sweep_command.add_argument("--widths", type=float, nargs="+", default=list(PRESET_WIDTHS))
    sweep_command.add_argument("--resolutions", type=int, nargs="+", default=list(PRESET_RESOLUTIONS))
    sweep_command.add_argument(
        "--expansions", type=int, nargs="+", default=[6], help="t for every row that expands (a t = 1 row stays 1)"
    )
    sweep_command.add_argument(
        "--repeats", type=_positive_int, nargs="+", action="append", metavar=("ROW", "N"),
        help="the values of n to try for one row of the table (from 1), e.g. --repeats 4 2 3 4; repeat for more rows",
    )
    sweep_command.add_argument(
        "--specs", help="sweep these architectures instead of a grid: a JSON list of specs, or one per line (.jsonl)"
    )
    where = sweep_command.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, help="local processes (default: one per CPU core)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    sweep_command.add_argument(
        "--out", type=_table_file,
        help="append the rows to FILE.csv or FILE.jsonl, skipping configurations already there (whatever was "
        "measured for them: measure other things into a new file)",
    )
    sweep_command.add_argument("--weights", help=f"with --images, the weights every configuration inherits: {weights_help}")
    _add_accuracy_options(sweep_command, "; measures top-1 / top-5 / agreement of every configuration")
    _add_latency_options(sweep_command, "also measure CPU latency (slowed by other workers on the same machine)")
    sweep_command.set_defaults(run=_sweep)

    export = commands.add_parser(
        "export", parents=[spec_options], help="TorchScript, root-operator YAML, ONNX and spec JSON into a folder"
    )
    export.add_argument("--out", required=True, help="folder to write the four files into")
    export.add_argument(
        "--weights",
        help=f"export these pretrained weights: a .pth, its .json description or a folder of them (default: "
        f"${WEIGHTS_ENV}, unless --spec, --width or --resolution ask for another architecture, which gets random "
        "weights, seed 0)",
    )
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
