"""Classify: a photo through pretrained MobileNetV2, shown as the model sees it, with its top-5."""

from __future__ import annotations

import streamlit as st
from PIL import Image

import charts
import state
from mbv2.classify import Prediction, classify
from mbv2.errors import MBV2Error
from mbv2.spec import ArchSpec
from mbv2.weights import WeightSource
from widgets import image_picker, weights_picker


def render() -> None:
    st.header("Classify")
    st.markdown(
        "Give MobileNetV2 a photo and see what it thinks it is. Pretrained weights only work with the "
        "architecture, padding and preprocessing they were trained with, so those come with the weights."
    )
    try:
        sources = state.weight_sources()
    except MBV2Error as error:  # e.g. MBV2_WEIGHTS names a broken file
        st.error(str(error))
        return
    image_column, seen_column, result_column = st.columns([1, 1, 1.6], gap="medium")
    # The weights are chosen below the results, which matter more, but before they are computed.
    picker_column, note_column = st.container(border=True).columns([2, 1], gap="medium")
    with picker_column:
        source = weights_picker(sources)
    with note_column:
        _architecture_note(state.current_spec(), source.spec)
    with image_column:
        picked = image_picker()
    if picked is None:
        result_column.info("Pick a sample, upload an image or take a picture to classify it.")
        return
    name, image = picked
    image_column.image(image, caption=f"{name}, {image.width}×{image.height}", width="stretch")
    seen = source.preprocessing.crop(image)
    seen_column.image(
        seen, caption=f"What the model sees: {seen.width}×{seen.height} after the weights' crop", width="stretch"
    )
    with result_column:
        try:
            with st.spinner(f"Classifying {name} with {source.name}…"):
                predictions = predict(source, image)
        except MBV2Error as error:
            st.error(str(error))
            return
        best = predictions[0]
        st.subheader(f"{best.label} · {best.probability:.1%}")
        st.plotly_chart(charts.top_k_figure(predictions))


def predict(source: WeightSource, image: Image.Image) -> list[Prediction]:
    """Classification uses the fast path: same logits as the eager model, about half the time."""
    return classify(state.fast_pretrained(source.name), source, image, k=5)


def _architecture_note(edited: ArchSpec, trained: ArchSpec) -> None:
    differences = spec_differences(edited, trained)
    if differences:
        st.info(
            "Your architecture differs from the one these weights were trained with "
            f"({'; '.join(differences)}), so images are classified with the weights' own architecture."
        )


def spec_differences(edited: ArchSpec, trained: ArchSpec) -> list[str]:
    """What a student changed, in words: "width 0.5 instead of 1.0", "rows 2, 7 of the table"."""
    differences = []
    if edited.blocks != trained.blocks:
        changed = [
            str(number)
            for number in range(1, max(len(edited.blocks), len(trained.blocks)) + 1)
            if edited.blocks[number - 1 : number] != trained.blocks[number - 1 : number]
        ]
        differences.append(f"table row{'s' * (len(changed) > 1)} {', '.join(changed)}")
    labels = {"width_mult": "width", "resolution": "resolution", "padding": "padding"}
    for field, label in labels.items():
        if getattr(edited, field) != getattr(trained, field):
            differences.append(f"{label} {getattr(edited, field)} instead of {getattr(trained, field)}")
    if not differences and edited != trained:
        differences.append("stem, head or class count")
    return differences
