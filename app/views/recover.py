"""Compare's distillation section: train an edited configuration to imitate the original, live, and keep it."""

from __future__ import annotations

import os
from functools import partial

import pandas as pd
import streamlit as st

import state
from heavy import run_queued
from mbv2.compare import ConfigSummary
from mbv2.distill import DistillationSettings, Recovery, recover
from mbv2.errors import MBV2Error
from mbv2.evaluate import CALIBRATION_ENV, image_set
from mbv2.jobs import Report
from mbv2.spec import ArchSpec

DISTILLED_KEY = "compare_distilled"  # (ArchSpec, accuracy settings) -> Recovery, in this session


def section(configs: dict[str, ArchSpec], settings, scored: dict) -> None:
    """`settings`: Compare's accuracy settings (weights, labelled folder, image count), shared with its plot;
    `scored`: its accuracies of inherited weights, which a distillation measures on the way."""
    st.subheader("Recover by distillation")
    st.markdown(
        "Inherited weights are only a starting point. A short **distillation** trains the edited network to give "
        "the original network's answers on unlabelled photos (random crops and flips); the result is measured on "
        "the labelled images above and saved as weights that every view can use."
    )
    results: dict[tuple[ArchSpec, object], Recovery] = st.session_state.setdefault(DISTILLED_KEY, {})
    name_column, folder_column, steps_column, button_column = st.columns([2, 3, 1, 2], vertical_alignment="bottom")
    name = name_column.selectbox("Configuration", list(configs), key="recover_name")
    folder = folder_column.text_input(
        "Unlabelled photos to learn from", value=os.environ.get(CALIBRATION_ENV, ""), key="recover_images",
        help="Any photos, but not the labelled ones above, or the measurement would flatter the result.",
    )
    steps = steps_column.number_input("Steps", 10, 5000, DistillationSettings.steps, step=10, key="recover_steps")
    spec = configs[name]
    clicked = button_column.button(
        "Distil", key="recover_start", type="primary", disabled=not folder.strip(),
        help=f"{DistillationSettings.batch_size} images per step; {DistillationSettings.steps} steps take about 2 "
        "minutes on 2 CPU cores.",
    )
    if clicked:
        _distil(spec, folder.strip(), int(steps), settings, results, scored)
    if (spec, settings) in results:
        _show(results[spec, settings])


def _distil(spec: ArchSpec, folder: str, steps: int, settings, results: dict, scored: dict) -> None:
    """Live loss curve; Cancel (any click) stops it, and nothing is saved half-trained."""
    try:
        evaluator = state.evaluator(settings.weights, settings.folder, settings.limit)
        training = image_set(folder)
        st.button("Cancel", key="recover_cancel", help="Stops the training; nothing is saved.")
        bar = st.progress(0.0, text="Measuring the inherited weights, then distilling…")
        curve = st.empty()
        losses: list[float] = []

        def step_done(report: Report, step: int, total: int, loss: float) -> None:
            losses.append(loss)  # every step's loss, though the page looks only a few times a second
            report(step, total, loss)

        def show(step: int, total: int, loss: float) -> None:
            bar.progress(step / total, text=f"Step {step} of {total}: loss {loss:.3f}")
            curve.line_chart(_loss_frame(losses[:step]), x_label="step", height=220)

        recovery = run_queued(
            "Distillation",
            lambda report: recover(
                evaluator, spec, training, state.LOCAL_WEIGHTS, DistillationSettings(steps=steps),
                partial(step_done, report),
            ),
            show,
        )
    except MBV2Error as error:
        st.error(str(error))
        return
    results[spec, settings] = recovery
    scored[spec, settings] = recovery.before
    state.weight_sources.clear()  # the saved weights appear in every weights picker
    st.rerun()


def _show(recovery: Recovery) -> None:
    before, after = recovery.before, recovery.after
    metric = "top1" if before.top1 is not None else "agreement"
    words = "Top-1" if metric == "top1" else "Agreement"
    inherited, distilled, curve = st.columns([1, 1, 3])
    inherited.metric(f"{words}, inherited", f"{getattr(before, metric):.1f}%")
    distilled.metric(
        f"{words}, distilled", f"{getattr(after, metric):.1f}%",
        delta=f"{getattr(after, metric) - getattr(before, metric):+.1f} points",
    )
    curve.line_chart(_loss_frame(recovery.losses), x_label="step", height=200)
    st.caption(
        f"{len(recovery.losses)} steps in {recovery.seconds:.0f} s; measured on {after.images} images from "
        f"{after.folder}. Saved as {recovery.saved.path.name} (+ .json) in {recovery.saved.path.parent}: pick "
        f"“{recovery.saved.name}” under Weights in any view."
    )


def _loss_frame(losses: list[float] | tuple[float, ...]) -> pd.DataFrame:
    return pd.DataFrame({"distillation loss": losses}, index=range(1, len(losses) + 1))  # steps count from 1


def distilled_points(summaries: list[ConfigSummary], settings, by_latency: bool) -> list[tuple[str, float, float]]:
    """(name, cost, score) of every listed configuration distilled in this session, for the accuracy plot."""
    results: dict = st.session_state.get(DISTILLED_KEY, {})
    points = []
    for summary in summaries:
        recovery = results.get((summary.spec, settings))
        if recovery is None or (by_latency and summary.latency is None):
            continue
        after = recovery.after
        cost = summary.latency.median_ms if by_latency else summary.madds_paper / 1e6
        points.append((f"{summary.name}, distilled", cost, after.top1 if after.top1 is not None else after.agreement))
    return points
