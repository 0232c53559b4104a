"""Compare: named configurations side by side, their measured latency, a Pareto plot, exports."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import pandas as pd
import streamlit as st

import charts
import state
from heavy import run_queued
from views import recover
from widgets import literal
from mbv2.compare import (
    TF_SLIM_REFERENCES,
    TF_SLIM_SOURCE,
    ConfigSummary,
    NamedConfig,
    export_stem,
    size_name,
    summarise,
    tf_slim_presets,
)
from mbv2.comparison import Comparison
from mbv2.cost import check_batch
from mbv2.device import available_cores
from mbv2.errors import MBV2Error, SpecError
from mbv2.evaluate import IMAGENET_ENV, BlockImportance, Evaluation, block_importance, default_image_folder
from mbv2.export import onnx_bytes, operators_yaml, seeded_model, torchscript_bytes, traced
from mbv2.fast import engine_name
from mbv2.jsonfile import json_text, parse_json
from mbv2.latency import BUSY_SPREAD, LatencyResult, LatencySettings, Progress, measure_specs
from mbv2.spec import ArchSpec
from mbv2.sweeptable import SUFFIXES as SWEEP_SUFFIXES, read_table
from mbv2.weights import WeightSource

CONFIGS_KEY = "compare_configs"  # name -> ArchSpec, in the order they were added
LATENCY_KEY = "compare_latency"  # (ArchSpec, LatencySettings) -> LatencyResult, measured in this session
EXPORT_KEY = "compare_export"  # (ArchSpec, its files) prepared for download in this session
PRESETS = {config.name: config.spec for config in tf_slim_presets()}
ACCURACY_KEY = "compare_accuracy"  # (ArchSpec, AccuracySettings) -> Evaluation, measured in this session
IMPORTANCE_KEY = "compare_importance_results"  # AccuracySettings -> (full network's Evaluation, per-block results)
TOP1_MADDS_AXIS, TOP1_LATENCY_AXIS = "Top-1 vs multiply-adds", "Top-1 vs latency"
LATENCY_AXIS, PARAMS_AXIS = "Latency (ms)", "Parameters (M)"
DEFAULT_ACCURACY_IMAGES = 250
LINK_PARAM = "compare"  # the list in the URL, so a reload or a shared link brings it back
LOAD_KEY, LOAD_ERROR_KEY = "compare_load", "compare_load_error"
Result = TypeVar("Result")


@dataclass(frozen=True)
class AccuracySettings:
    weights: WeightSource
    folder: str
    limit: int


def render() -> None:
    st.header("Compare configurations")
    st.markdown(
        "Collect architectures under a name, then compare their size, cost, memory and measured speed. "
        "Counts are for one image; latency is measured on this server's CPU when you ask for it."
    )
    if CONFIGS_KEY not in st.session_state:
        st.session_state[CONFIGS_KEY] = _configs_from_link() or dict([_named_current(state.current_spec(), {})])
    configs: dict[str, ArchSpec] = st.session_state[CONFIGS_KEY]
    _editor(configs)
    st.query_params[LINK_PARAM] = _link_of(configs)
    measured: dict[tuple[ArchSpec, LatencySettings], LatencyResult] = st.session_state.setdefault(LATENCY_KEY, {})
    _save_and_load(configs, measured)
    if not configs:
        st.info("The list is empty: add the current design or some TF-slim presets above.")
        return
    table_slot = st.container()  # drawn once the latency settings below are known
    settings, pending = _latency_controls(configs, measured)
    scored: dict[tuple[ArchSpec, AccuracySettings], Evaluation] = st.session_state.setdefault(ACCURACY_KEY, {})
    accuracy_settings, unscored = _accuracy_controls(configs, scored)
    accuracies = {name: scored[spec, accuracy_settings] for name, spec in configs.items()
                  if (spec, accuracy_settings) in scored}
    try:
        with table_slot, st.spinner("Counting parameters, multiply-adds and activation memory…"):
            summaries = [
                summarise(NamedConfig(name, spec), measured.get((spec, settings))) for name, spec in configs.items()
            ]
    except MBV2Error as error:
        st.error(str(error))
        return
    with table_slot:
        st.dataframe(_table(summaries, accuracies), hide_index=True, width="stretch", column_config=COLUMN_FORMATS)
        st.caption(
            "Peak activations: the largest total of feature maps alive at once when the layers run one after "
            "another (float32, batch 1, BatchNorm folded, a residual block's input kept until its add). "
            f"TF-slim published: MACs · params · top-1 · Pixel 1 latency, from {TF_SLIM_SOURCE}; TF-slim counts "
            "no BatchNorm parameters and has a 1001-class head."
        )
    if pending:
        _measure(pending, settings, measured)
    if unscored:
        _score(unscored, accuracy_settings, scored)
    _pareto(summaries, accuracies, accuracy_settings)
    _sweep_table()
    if accuracy_settings is not None:
        _block_importance(accuracy_settings)
        recover.section(configs, accuracy_settings, scored)
    _exports(configs)


def _link_of(configs: dict[str, ArchSpec]) -> str:
    """[[name, stages, width, res, pad], ...]: the architecture's own link fields, one list per configuration."""
    return json.dumps([[name, *spec.to_query().values()] for name, spec in configs.items()],
                      separators=(",", ":"))


def _configs_from_link() -> dict[str, ArchSpec] | None:
    """The list in the link; what cannot be read is named in a warning and left out."""
    if LINK_PARAM not in st.query_params:
        return None
    try:
        entries = parse_json(st.query_params[LINK_PARAM])
        if not isinstance(entries, list):
            raise ValueError("it is not a list")
    except ValueError as error:
        st.warning(f"The list of configurations in this link cannot be read ({error}), so it starts afresh.")
        return None
    configs: dict[str, ArchSpec] = {}
    fields = list(ArchSpec().to_query())
    for number, entry in enumerate(entries, start=1):
        try:
            if not isinstance(entry, list) or len(entry) != len(fields) + 1:
                raise SpecError([f"write it as [name, {', '.join(fields)}]"])
            name, *values = (str(value) for value in entry)
            configs[name] = state.default_spec().with_query(dict(zip(fields, values)))
        except SpecError as error:
            st.warning(f"Configuration {number} in this link is left out: {'; '.join(error.problems)}")
    return configs


def _save_and_load(
    configs: dict[str, ArchSpec], measured: dict[tuple[ArchSpec, LatencySettings], LatencyResult]
) -> None:
    """The list and its measured latencies as a JSON file, and that file read back."""
    with st.expander("Save or load this list (with its measured latencies)"):
        kept = tuple((spec, result) for (spec, _), result in measured.items() if spec in configs.values())
        saved = Comparison(tuple(NamedConfig(name, spec) for name, spec in configs.items()), kept)
        save_column, load_column = st.columns([1, 2], vertical_alignment="bottom")
        save_column.download_button(
            "Save the list (JSON)", saved.to_json(), "mbv2-comparison.json", "application/json",
            key="compare_save", on_click="ignore", icon=":material/download:",
        )
        load_column.file_uploader(
            "Load a saved list", type=["json"], key=LOAD_KEY, on_change=_load,
            help="A file saved with the button beside; it replaces the list and adds its measurements.",
        )
        if message := st.session_state.get(LOAD_ERROR_KEY):
            st.error(message)


def _load() -> None:
    upload = st.session_state.get(LOAD_KEY)
    st.session_state[LOAD_ERROR_KEY] = None
    if upload is None:
        return
    try:
        loaded = Comparison.from_json(json_text(upload.getvalue()))
    except ValueError as error:  # MBV2's file errors are ValueErrors too, as are json_text's
        st.session_state[LOAD_ERROR_KEY] = f"{literal(upload.name)}: {error}"
        return
    st.session_state[CONFIGS_KEY] = {config.name: config.spec for config in loaded.configs}
    measured = st.session_state.setdefault(LATENCY_KEY, {})
    measured.update({(spec, result.settings): result for spec, result in loaded.latencies})


def _spec_label(spec: ArchSpec) -> str:
    return size_name(spec.width_mult, spec.resolution)


def _named_current(spec: ArchSpec, configs: dict[str, ArchSpec]) -> tuple[str, ArchSpec]:
    """A preset keeps its preset name; anything else becomes "My design N (width/resolution)"."""
    preset_name = next((name for name, preset in PRESETS.items() if preset.replace(padding=spec.padding) == spec), None)
    if preset_name is not None and preset_name not in configs:
        return preset_name, spec
    number = len(configs) + 1
    while (name := f"My design {number} ({_spec_label(spec)})") in configs:
        number += 1
    return name, spec


def _add_current() -> None:
    configs = st.session_state[CONFIGS_KEY]
    typed = st.session_state.get("compare_new_name", "").strip()
    name, spec = (typed, state.current_spec()) if typed else _named_current(state.current_spec(), configs)
    configs[name] = spec
    st.session_state["compare_new_name"] = ""


def _add_presets() -> None:
    padding = state.default_spec().padding  # the presets with the padding of the weights at hand
    st.session_state[CONFIGS_KEY].update(
        {name: PRESETS[name].replace(padding=padding) for name in st.session_state["compare_presets"]}
    )
    st.session_state["compare_presets"] = []


def _remove() -> None:
    for name in st.session_state["compare_remove"]:
        st.session_state[CONFIGS_KEY].pop(name, None)
    st.session_state["compare_remove"] = []


def _editor(configs: dict[str, ArchSpec]) -> None:
    add_column, presets_column, remove_column = st.columns(3, gap="medium")
    with add_column:
        name = st.text_input(
            "Add the current design as",
            key="compare_new_name",
            placeholder=_named_current(state.current_spec(), configs)[0],
            help="The architecture as it is in the Architecture view right now; leave empty for the suggested name.",
        )
        taken = name.strip() in configs
        st.button("Add current design", key="compare_add_current", on_click=_add_current, disabled=taken)
        if taken:
            st.caption(f"{name.strip()!r} is already in the list: choose another name.")
    with presets_column:
        chosen = st.multiselect(
            "TF-slim presets (width/resolution)",
            [name for name in PRESETS if name not in configs],
            key="compare_presets",
            placeholder="e.g. MobileNetV2 0.5/160",
        )
        st.button("Add presets", key="compare_add_presets", on_click=_add_presets, disabled=not chosen)
    with remove_column:
        doomed = st.multiselect("Remove from the list", list(configs), key="compare_remove")
        st.button("Remove", key="compare_remove_button", on_click=_remove, disabled=not doomed)


COLUMN_FORMATS = {
    "Params (M)": st.column_config.NumberColumn(format="%.3f"),
    "MAdds paper (M)": st.column_config.NumberColumn(format="%.1f"),
    "MAdds fvcore (M)": st.column_config.NumberColumn(format="%.1f"),
    "Peak act. (MiB)": st.column_config.NumberColumn(format="%.2f", help="Peak activation memory, float32"),
    "Latency (ms)": st.column_config.NumberColumn(format="%.1f", help="Median on this CPU, with the settings below"),
    "Latency IQR (ms)": st.column_config.TextColumn(
        help="The middle half of the timed runs took between these: a wide range means a busy machine"
    ),
    "Top-1 (%)": st.column_config.NumberColumn(
        format="%.1f", help="Measured on the images below, with weights inherited from the pretrained network and "
        "no training (agreement with the original network where the images have no labels)"
    ),
    "TF-slim published": st.column_config.TextColumn(
        help="MACs · params (no BatchNorm, 1001 classes) · ImageNet top-1 · TF-Lite latency on a Pixel 1 phone",
        width="medium",
    ),
}


def _table(summaries: list[ConfigSummary], accuracies: dict[str, Evaluation]) -> pd.DataFrame:
    rows = []
    for summary in summaries:
        reference = summary.reference
        accuracy = accuracies.get(summary.name)
        rows.append(
            {
                "Configuration": summary.name,
                "Params (M)": summary.params / 1e6,
                "MAdds paper (M)": summary.madds_paper / 1e6,
                "MAdds fvcore (M)": summary.madds_fvcore / 1e6,
                "Peak act. (MiB)": summary.peak_activation_bytes / 2**20,
                "Latency (ms)": summary.latency.median_ms if summary.latency else None,
                "Latency IQR (ms)": _iqr(summary.latency) if summary.latency else None,
                "Top-1 (%)": _score_of(accuracy) if accuracy else None,
                "TF-slim published": (
                    f"{reference.macs_m:g}M · {reference.params_m}M · {reference.top1}% · {reference.pixel1_ms} ms"
                    if reference
                    else "—"
                ),
            }
        )
    return pd.DataFrame(rows)


def _iqr(latency: LatencyResult) -> str:
    first, third = latency.quartiles_ms
    return f"{first:.1f}–{third:.1f}"


def _latency_controls(
    configs: dict[str, ArchSpec], measured: dict[tuple[ArchSpec, LatencySettings], LatencyResult]
) -> tuple[LatencySettings, dict[str, ArchSpec]]:
    """Settings and the Measure button in one row: the settings, and what to measure if it was clicked.

    A click times every configuration in the list, not only the new ones: together, in interleaved
    rounds, their times are comparable; timed at different moments they are not.
    """
    runs_column, threads_column, batch_column, button_column = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
    runs = runs_column.number_input("Timed runs (median of)", 1, 200, 10, key="compare_runs")
    cores = available_cores()
    threads = threads_column.number_input("CPU threads", 1, cores, cores, key="compare_threads")
    batch = batch_column.number_input("Batch size", 1, 64, 1, key="compare_batch")
    settings = LatencySettings(runs=int(runs), warmup=3, batch_size=int(batch), threads=int(threads))
    pending = {name: spec for name, spec in configs.items() if (spec, settings) not in measured}
    clicked = button_column.button(
        f"Measure latency ({len(pending)} to go)" if pending else "All measured",
        key="compare_measure",
        type="primary",
        disabled=not pending,
    )
    results = [measured[spec, settings] for spec in configs.values() if (spec, settings) in measured]
    machine = results[0].machine if results else "this server's CPU"
    engine = results[0].engine if results else engine_name()
    st.caption(
        f"Latency: {engine}, the engine that classifies; median of {settings.runs} runs after {settings.warmup} "
        f"warm-up runs, with the IQR (the middle half of the runs), batch {settings.batch_size}, "
        f"{settings.threads} thread(s), random weights, on {machine}. All configurations in the list are timed "
        "together, in interleaved rounds, so that their times compare; kept for this session."
    )
    busy = [name for name, spec in configs.items() if (spec, settings) in measured and measured[spec, settings].warning]
    if busy:
        st.warning(
            f"The machine was busy while timing {', '.join(busy)}: the runs spread widely (IQR above "
            f"{BUSY_SPREAD:.0%} of the median). Compare these times with care, or measure again when it is quieter."
        )
    return settings, configs if clicked else {}


def _measure(
    configs: dict[str, ArchSpec],
    settings: LatencySettings,
    measured: dict[tuple[ArchSpec, LatencySettings], LatencyResult],
) -> None:
    """Slow (a second or two per configuration, then the runs), so it runs only on a click."""
    timed: dict[str, ArchSpec] = {}
    for name, spec in configs.items():
        try:
            check_batch(spec, settings.batch_size)
            timed[name] = spec
        except MBV2Error as error:  # e.g. a batch too large for this design's memory: say so, time the rest
            st.error(f"{name}: {error}")
    if not timed:
        return
    st.button("Cancel", key="compare_cancel_run", help="Stops at once; nothing of this measurement is kept.")
    bar = st.progress(0.0, text=f"Preparing {len(timed)} configuration(s) for {engine_name()}…")

    def show(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Timing {len(timed)} configuration(s) in interleaved rounds: run {done} "
                     f"of {total}")

    specs = list(dict.fromkeys(timed.values()))  # a design listed twice is timed once
    try:
        results = run_queued(
            f"Timing {len(specs)} configuration(s)", partial(measure_specs, specs, settings), show,
            key=("latency", tuple(specs), settings),
        )
    except MBV2Error as error:
        bar.empty()
        st.error(str(error))
        return
    for spec, result in zip(specs, results):
        measured[(spec, settings)] = result
    if len(timed) == len(configs):
        st.rerun()  # else an error is on the page; what was measured shows at the next run


def _each_with_progress(
    pending: dict[str, ArchSpec],
    action: str,
    unit: str,
    measure: Callable[[ArchSpec, Progress], Result],
    settings: Hashable,
) -> Iterator[tuple[ArchSpec, Result]]:
    """Each configuration measured in turn, in the server's heavy-job queue, under one progress bar.

    Cancel (any click, in fact) reruns the page, which stops the loop; what was finished has been handed
    out already, so it is kept. Sessions asking for the same configuration and `settings` share one job.
    """
    st.button("Cancel", key=f"compare_cancel_{unit}", help="Stops at once; finished configurations keep "
              "their results.")
    bar = st.progress(0.0, text=f"{action}…")
    for number, (name, spec) in enumerate(pending.items()):

        def show(done: int, total: int, number: int = number, name: str = name) -> None:
            bar.progress((number + done / total) / len(pending), text=f"{action} {name}: {unit} {done} of {total}")

        try:
            result = run_queued(f"{action} {name}", partial(measure, spec), show, key=(action, spec, settings))
        except MBV2Error as error:  # e.g. a batch too large for this design's memory: say so, keep the rest
            bar.empty()
            st.error(f"{name}: {error}")
            return
        yield spec, result


def _score_of(evaluation: Evaluation) -> float:
    """Top-1 where the images are labelled, else agreement with the original network."""
    return evaluation.top1 if evaluation.top1 is not None else evaluation.agreement


def _accuracy_controls(
    configs: dict[str, ArchSpec], scored: dict[tuple[ArchSpec, AccuracySettings], Evaluation]
) -> tuple[AccuracySettings | None, dict[str, ArchSpec]]:
    """Where accuracy is measured, and what to measure if the button was clicked."""
    sources = state.weight_sources()
    offline = {source.name: source for source in sources if source.is_available_offline()}
    choices = offline or {sources[0].name: sources[0]}
    weights_column, folder_column, limit_column, button_column = st.columns(
        [2, 3, 1, 2], vertical_alignment="bottom"
    )
    weights = weights_column.selectbox("Weights to inherit from", list(choices), key="compare_weights")
    folder = folder_column.text_input(
        "Labelled images (a folder)", value=str(default_image_folder() or ""), key="compare_images",
        help="Files named <synset>_*.JPEG, or one subfolder per synset as in ImageNet's validation set. Set "
        f"{IMAGENET_ENV} to fill this in. Images without labels give agreement with the original network only.",
    )
    limit = limit_column.number_input("Images", 10, 50_000, DEFAULT_ACCURACY_IMAGES, step=50, key="compare_limit")
    if not folder.strip():
        button_column.button("Measure top-1", key="compare_score", disabled=True)
        st.caption(f"To measure accuracy, type a folder of labelled ImageNet images (or set {IMAGENET_ENV}).")
        return None, {}
    settings = AccuracySettings(choices[weights], folder.strip(), int(limit))
    pending = {name: spec for name, spec in configs.items() if (spec, settings) not in scored}
    clicked = button_column.button(
        f"Measure top-1 ({len(pending)} to go)" if pending else "All measured",
        key="compare_score", type="primary", disabled=not pending,
    )
    st.caption(
        f"Accuracy: every configuration gets the weights of {weights}, copied, grown or sliced to fit (no training; "
        "see Classify for what each layer got), and classifies the same images. Results are cached per "
        "configuration, weights and folder."
    )
    return settings, pending if clicked else {}


def _score(
    pending: dict[str, ArchSpec],
    settings: AccuracySettings,
    scored: dict[tuple[ArchSpec, AccuracySettings], Evaluation],
) -> None:
    """Slow (seconds per configuration): a progress bar, and a Cancel that keeps what is finished."""
    try:
        evaluator = state.evaluator(settings.weights, settings.folder, settings.limit)
        classify_all = _each_with_progress(
            pending, "Classifying with", "image", lambda spec, show: evaluator.evaluate(spec, progress=show), settings
        )
        for spec, evaluation in classify_all:
            scored[spec, settings] = evaluation
    except MBV2Error as error:
        st.error(str(error))
        return
    if all((spec, settings) in scored for spec in pending.values()):
        st.rerun()  # else an error is on the page; what was measured shows at the next run


@st.fragment  # switching the plot's axes redraws the plot only
def _pareto(
    summaries: list[ConfigSummary], accuracies: dict[str, Evaluation], settings: AccuracySettings | None
) -> None:
    st.subheader("Pareto plot")
    axis = st.segmented_control(
        "Plot", [TOP1_MADDS_AXIS, TOP1_LATENCY_AXIS, LATENCY_AXIS, PARAMS_AXIS], default=TOP1_MADDS_AXIS,
        key="compare_axis",
        format_func=lambda axis: axis if "vs" in axis else f"{axis.split(' (')[0]} vs multiply-adds",
    ) or TOP1_MADDS_AXIS
    if axis in (TOP1_MADDS_AXIS, TOP1_LATENCY_AXIS):
        _accuracy_plot(summaries, accuracies, settings, by_latency=axis == TOP1_LATENCY_AXIS)
        return
    if axis == LATENCY_AXIS:
        plotted = [summary for summary in summaries if summary.latency is not None]
        if len(plotted) < len(summaries):
            st.caption(f"{len(summaries) - len(plotted)} configuration(s) not measured yet: press Measure latency.")
    else:
        plotted = summaries
    st.plotly_chart(charts.pareto_figure(plotted, latency=axis == LATENCY_AXIS), width="stretch")
    st.caption(
        "Circles: your configurations; the ringed ones, joined by the dashed line, are those for which no other "
        "configuration has both fewer multiply-adds and a lower value on the vertical axis. "
        f"Diamonds: the published TF-slim checkpoints, from {TF_SLIM_SOURCE}"
        + (". Their latency is TF-Lite on a Pixel 1 phone (right axis), not this CPU." if axis == LATENCY_AXIS else ".")
    )


def _accuracy_plot(
    summaries: list[ConfigSummary],
    accuracies: dict[str, Evaluation],
    settings: AccuracySettings | None,
    by_latency: bool,
) -> None:
    plotted = [s for s in summaries if s.name in accuracies and (s.latency is not None or not by_latency)]
    missing = len(summaries) - len(plotted)
    if missing:
        needed = "Measure top-1" + (" and Measure latency" if by_latency else "")
        st.caption(f"{missing} configuration(s) not measured yet: press {needed}.")
    labelled = all(accuracies[s.name].top1 is not None for s in plotted)
    metric = "Top-1" if labelled else "Agreement with the original network"
    figure = charts.accuracy_figure(
        names=[s.name for s in plotted],
        costs=[s.latency.median_ms if by_latency else s.madds_paper / 1e6 for s in plotted],
        scores=[_score_of(accuracies[s.name]) for s in plotted],
        cost_title="Median latency on this CPU (ms)" if by_latency else "Multiply-adds, paper convention (millions)",
        score_title=f"{metric} (%)",
        published=[] if by_latency else [(r.name, r.macs_m, r.top1) for r in TF_SLIM_REFERENCES],
        distilled=recover.distilled_points(plotted, settings, by_latency),
    )
    st.plotly_chart(figure, width="stretch")
    if settings is None or not plotted:
        return
    evaluation = accuracies[plotted[0].name]
    own = state.evaluator(settings.weights, settings.folder, settings.limit).evaluate(settings.weights.spec)
    st.caption(
        f"Circles: {metric.lower()} measured with inherited weights, no training, on {evaluation.images} images from "
        f"{evaluation.folder}; the ringed ones, joined by the dashed line, are those no other configuration beats "
        f"on both accuracy and cost. The weights as trained ({settings.weights.name}) score {own.describe()}. "
        + ("Stars: the same configurations after distillation (below). " if recover.distilled_points(
            plotted, settings, by_latency) else "")
        + ("" if by_latency else f"Diamonds: TF-slim's published top-1 of trained networks on all 50,000 ImageNet "
           f"validation images, from {TF_SLIM_SOURCE}.")
    )


def _sweep_table() -> None:
    """A table `mbv2 sweep --out` wrote, on the same accuracy/cost plot as the configurations above."""
    st.subheader("A sweep from the command line")
    st.markdown(
        "Hundreds of configurations are a job for `mbv2 sweep` (see the README; it runs on a Dask cluster). "
        "Load the table it wrote to see its accuracy/cost Pareto front here."
    )
    upload = st.file_uploader(
        "Sweep table (.csv or .jsonl)", type=[suffix.lstrip(".") for suffix in SWEEP_SUFFIXES], key="compare_sweep",
        help="The file `mbv2 sweep --out FILE --images DIR --weights PATH` writes; with --latency, latency too.",
    )
    if upload is None:
        return
    try:
        rows = read_table(upload.getvalue(), Path(upload.name).suffix, upload.name)
    except MBV2Error as error:
        st.error(str(error))
        return
    scored = [row for row in rows if row["top1"] is not None or row["agreement"] is not None]
    if not scored:
        st.warning(
            f"{upload.name} holds {len(rows)} configurations but no accuracy: run the sweep again with "
            "--images DIR --weights PATH (into a new file) to measure top-1 with inherited weights."
        )
        return
    timed = all(row["latency_median_ms"] is not None for row in scored)
    by_latency = timed and st.toggle("Latency instead of multiply-adds", key="compare_sweep_latency")
    labelled = all(row["top1"] is not None for row in scored)
    metric = "Top-1" if labelled else "Agreement with the original network"
    figure = charts.accuracy_figure(
        names=[str(row["name"]) for row in scored],
        costs=[row["latency_median_ms"] if by_latency else row["madds_paper"] / 1e6 for row in scored],
        scores=[row["top1"] if labelled else row["agreement"] for row in scored],
        cost_title="Median latency where the sweep ran (ms)" if by_latency else "Multiply-adds, paper convention "
        "(millions)",
        score_title=f"{metric} (%)",
        published=[] if by_latency else [(r.name, r.macs_m, r.top1) for r in TF_SLIM_REFERENCES],
    )
    st.plotly_chart(figure, width="stretch", key="compare_sweep_plot")
    images = {row["images"] for row in scored}
    st.caption(
        f"{len(scored)} of the {len(rows)} configurations in {upload.name} have an accuracy, measured with inherited "
        f"weights and no training on {' or '.join(f'{count:.0f}' for count in sorted(images))} images; the ringed "
        "ones are those no other configuration beats on both accuracy and cost."
        + ("" if by_latency else f" Diamonds: TF-slim's published top-1 of trained networks, from {TF_SLIM_SOURCE}.")
    )


def _block_importance(settings: AccuracySettings) -> None:
    st.subheader("Which blocks matter")
    st.markdown(
        "Take the weights' own network, remove **one** residual block (the others keep their weights), and "
        "measure what it costs. Blocks that add little can go; blocks that cost many points cannot."
    )
    results: dict[AccuracySettings, tuple[Evaluation, tuple[BlockImportance, ...]]] = st.session_state.setdefault(
        IMPORTANCE_KEY, {}
    )
    if settings not in results:
        if st.button("Measure block importance", key="compare_importance", help="One evaluation of the full network, "
                     "then one per residual block, on the images above."):
            try:
                evaluator = state.evaluator(settings.weights, settings.folder, settings.limit)
                st.button("Cancel", key="compare_cancel_importance")
                bar = st.progress(0.0, text="Removing one block at a time…")
                results[settings] = run_queued(
                    "Which blocks matter", partial(block_importance, evaluator),
                    lambda done, total: bar.progress(done / total, text=f"{done} of {total} images"),
                    key=("block importance", settings),
                )
            except MBV2Error as error:
                st.error(str(error))
                return
            st.rerun()
        return
    full, blocks = results[settings]
    metric = "top1" if full.top1 is not None else "agreement"
    drops = [getattr(full, metric) - getattr(block.evaluation, metric) for block in blocks]
    st.plotly_chart(
        charts.block_importance_figure([block.label for block in blocks], drops, "top-1" if metric == "top1"
                                       else "agreement"),
        width="stretch",
    )
    st.caption(f"The full network: {full.describe()}. Each bar: points lost without that block alone.")


def _export_files(spec: ArchSpec) -> tuple[bytes, str, bytes]:
    """TorchScript, its root operators (from the same trace) and ONNX.

    Kept in the session that asked, one design at a time, so the memory goes when the session does.
    """
    model = seeded_model(spec)
    script = traced(model)
    return torchscript_bytes(script), operators_yaml(script), onnx_bytes(model)


def _exports(configs: dict[str, ArchSpec]) -> None:
    st.subheader("Export")
    name = st.selectbox("Configuration to export", list(configs), key="compare_export_name")
    spec = configs[name]
    stem = export_stem(spec.width_mult, spec.resolution)
    st.caption(
        "TorchScript is traced at the configuration's resolution; the operator list is the YAML that PyTorch's "
        "mobile custom build takes (`torch.jit.export_opnames`). The model files hold random weights (seed 0); "
        "`mbv2 export --weights PATH` exports pretrained ones."
    )
    spec_column, script_column, operators_column, onnx_column = st.columns(4)
    spec_column.download_button(
        "Spec (JSON)", spec.to_json(), f"{stem}.json", "application/json",
        key="compare_download_spec", on_click="ignore",
    )
    prepared_spec, files = st.session_state.get(EXPORT_KEY, (None, None))
    if prepared_spec != spec:
        if st.button("Prepare TorchScript, operators and ONNX", key="compare_prepare"):
            try:
                with st.spinner(f"Tracing and exporting {name} (ONNX takes a few seconds)…"):
                    files = run_queued(
                        f"Exporting {name}", lambda report: _export_files(spec), lambda: None, key=("export", spec)
                    )
                st.session_state[EXPORT_KEY] = (spec, files)
            except MBV2Error as error:
                st.error(str(error))
                return
            st.rerun()
        return
    torchscript, operators, onnx = files
    script_column.download_button(
        "TorchScript (.pt)", torchscript, f"{stem}.pt", "application/octet-stream",
        key="compare_download_torchscript", on_click="ignore",
    )
    operators_column.download_button(
        "Root operators (YAML)", operators, f"{stem}.yaml", "application/x-yaml",
        key="compare_download_operators", on_click="ignore",
    )
    onnx_column.download_button(
        "ONNX", onnx, f"{stem}.onnx", "application/octet-stream",
        key="compare_download_onnx", on_click="ignore",
    )
