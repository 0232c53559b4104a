"""Classify: a photo through your architecture (with inherited weights) and through the original."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from PIL import Image

import charts
import state
from mbv2.attention import AttentionMap, class_activation_map
from mbv2.classify import Prediction
from mbv2.compare import size_name
from mbv2.errors import MBV2Error
from mbv2.inherit import OUTCOME_MEANINGS, InheritanceReport
from mbv2.spec import ArchSpec
from mbv2.weights import WeightSource
from widgets import image_picker, network_note, weights_picker

ATTENTION_KEY = "classify_attention"
ATTENTION_HELP = (
    "A class activation map (Grad-CAM, from the grad-cam package): which parts of the image pushed the network "
    "towards its top answer. A network that answers right for the wrong reason looks at the background."
)


def render() -> None:
    st.header("Classify")
    st.markdown(
        "Give MobileNetV2 a photo and see what it thinks it is. The network is the architecture you edited, "
        "with the pretrained weights carried over (copied, grown or sliced, no training); where it differs from "
        "the weights' own architecture, the original network answers beside it."
    )
    try:
        sources = state.weight_sources()
    except MBV2Error as error:  # e.g. MBV2_WEIGHTS names a broken file
        st.error(str(error))
        return
    spec = state.current_spec()
    # The picker's column is wide enough for its three choices at 1280 px.
    image_column, seen_column, result_column = st.columns([1.4, 1, 2], gap="medium")
    # The weights are chosen below the results, which matter more, but before they are computed.
    picker_column, note_column = st.container(border=True).columns([1, 1], gap="medium")
    with picker_column:
        source = weights_picker(sources)
    with image_column:
        picked = image_picker()
    if picked is None:
        result_column.info("Pick a sample, upload an image or take a picture to classify it.")
        return
    name, image = picked
    image_column.image(image, caption=f"{name}, {image.width}×{image.height}", width="stretch")
    seen = source.preprocessing.at_resolution(spec.resolution).crop(image)
    seen_column.image(
        seen, caption=f"What the model sees: {seen.width}×{seen.height} after the weights' crop", width="stretch"
    )
    edited = spec != source.spec
    try:
        with st.spinner(f"Classifying {name}…"):
            predictions = state.predictions(spec, source, image)
            original = state.predictions(source.spec, source, image) if edited else None
            report = state.inherited(spec, source).report if edited else None
    except MBV2Error as error:
        result_column.error(str(error))
        return
    with result_column:
        if original is None:
            _top5(predictions, "")
        else:
            yours, theirs = st.columns(2, gap="medium")
            with yours:
                _top5(predictions, f"Your architecture, {size_name(spec.width_mult, spec.resolution)} "
                      "(inherited weights)")
            with theirs:
                _top5(original, f"Original, {size_name(source.spec.width_mult, source.spec.resolution)} (as trained)")
    if st.toggle("Where does the network look?", key=ATTENTION_KEY, help=ATTENTION_HELP):
        _attention(spec, source, image, name, edited)
    with note_column:
        if report is None:
            st.caption("Your architecture is the weights' own, so the network runs exactly as trained.")
        else:
            _inheritance(spec, source, report)


def _top5(predictions: list[Prediction], title: str) -> None:
    if title:
        st.markdown(f"**{title}**")
    best = predictions[0]
    st.subheader(f"{best.label} · {best.probability:.1%}")
    st.plotly_chart(charts.top_k_figure(predictions), key=f"top5-{title}")


def _attention(spec: ArchSpec, source: WeightSource, image: Image.Image, name: str, edited: bool) -> None:
    """Grad-CAM of each network's top class, over the image it saw."""
    networks = {"Your architecture": spec, "Original (as trained)": source.spec} if edited else {"The network": spec}
    try:
        with st.spinner(f"Tracing {name}'s top class back to the image (Grad-CAM)…"):
            maps: dict[str, AttentionMap] = {
                title: state.on_inference_thread(
                    class_activation_map, state.fast_network(network, source), source, image
                )
                for title, network in networks.items()
            }
    except MBV2Error as error:
        st.error(str(error))
        return
    for column, (title, attention) in zip(st.columns(4, gap="medium"), maps.items()):
        column.image(attention.overlay(), caption=f"{title}: what made it say {attention.label}", width="stretch")
    st.caption(
        "Red: the regions that raised the top class's score the most; blue: those that did not. Grad-CAM weighs the "
        "last convolution's 7×7 (at 224 px) feature maps by how much each raises that score, so the map is coarse."
    )


def _inheritance(spec: ArchSpec, source: WeightSource, report: InheritanceReport) -> None:
    st.caption(network_note(spec, source, report))
    with st.expander("What was inherited, layer by layer"):
        st.dataframe(
            pd.DataFrame(
                {
                    "layer": layer.role,
                    "what happened": layer.outcome,
                    "detail": layer.detail,
                    "module": layer.name,
                }
                for layer in report.layers
            ),
            hide_index=True,
            column_config={"what happened": st.column_config.TextColumn(help=_outcome_help())},
        )


def _outcome_help() -> str:
    return " · ".join(f"{outcome}: {meaning}" for outcome, meaning in OUTCOME_MEANINGS.items())
