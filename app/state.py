"""What the views share: the current architecture (session state) and cached results.

Every cache of the views is here. Caches are process-wide (`st.cache_resource` / `st.cache_data`),
so every browser session shares one model per configuration and an edit back to a seen configuration
is instant. They take the `WeightSource` itself, never its name: a name would have to be looked up
again, and a source rewritten under the same name (a new sidecar) would hit the old entry.
Analyses are not cached here: `mbv2.analysis.analyse` keeps its own (an lru_cache, as process-wide
as these), which the CLI and Compare's summaries share, so the views call it directly.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

import streamlit as st
import torch
from PIL import Image

from mbv2.activations import (
    AblationLogits,
    BlockActivations,
    BlockStatistics,
    block_statistics,
    bottleneck_logits,
    capture_block,
    top1_accuracy,
)
from mbv2.classify import Prediction, classify, pretrained_model
from mbv2.errors import EvaluationError, MBV2Error, SpecError
from mbv2.evaluate import Evaluator, calibrate_on, calibration_set, image_set
from mbv2.fast import FastModel, fast_model
from mbv2.images import open_image
from mbv2.inherit import Calibration, Inherited, inherit
from mbv2.manifold import RoundTripLoss, loss_curve
from mbv2.model import MobileNetV2
from mbv2.spec import OLD_STAGES_NAME, ArchSpec
from mbv2.weights import WeightSource, available_sources
from widgets import bullets

# ./weights/*.json (gitignored), listed in every weights picker; distilled weights are saved there.
LOCAL_WEIGHTS = Path(os.environ.get("MBV2_SAVED_WEIGHTS") or Path(__file__).resolve().parents[1] / "weights")
SPEC_KEY = "spec"
Result = TypeVar("Result")


def default_spec() -> ArchSpec:
    """The architecture of the first weights usable here (the paper's, with their padding), so a fresh
    session classifies with the network it shows."""
    try:
        return next((source.spec for source in weight_sources() if source.is_available_offline()), ArchSpec())
    except MBV2Error:  # a broken MBV2_WEIGHTS: the views say so; the architecture still works
        return ArchSpec()


def current_spec() -> ArchSpec:
    """The last valid architecture the user built: from the link at first, else the default's."""
    if SPEC_KEY not in st.session_state:
        try:
            spec = default_spec().with_query(st.query_params)
        except SpecError as error:
            st.warning(
                "The architecture in this link cannot be built, so the paper's is shown instead:\n"
                + bullets(error.problems)
            )
            spec = default_spec()
        set_spec(spec)
    return st.session_state[SPEC_KEY]


def set_spec(spec: ArchSpec) -> None:
    """Remember `spec` and put it in the URL (left out when it is the default, to keep links short).

    A link in the old form (`blocks=` for the table) is rewritten to the new one, so it is shared on as that.
    """
    st.session_state[SPEC_KEY] = spec
    st.query_params.pop(OLD_STAGES_NAME, None)
    is_default = spec == default_spec()
    for name, value in spec.to_query().items():
        if is_default:
            st.query_params.pop(name, None)
        else:
            st.query_params[name] = value


@st.cache_resource(show_spinner="Looking for weights…", ttl=60)
def weight_sources() -> list[WeightSource]:
    return available_sources(folders=(LOCAL_WEIGHTS,) if LOCAL_WEIGHTS.is_dir() else ())


# Streamlit would hash a WeightSource field by field through `dataclasses.asdict`, copying its 1,000 labels:
# 12 ms a call. Its own hash (a frozen dataclass's, over the same fields) takes microseconds, and these caches
# never leave this process, so Python's per-process hash is a sound key.
SOURCE_HASH = {WeightSource: hash}


@st.cache_resource(show_spinner="Loading pretrained weights…", max_entries=4, hash_funcs=SOURCE_HASH)
def pretrained(source: WeightSource) -> MobileNetV2:
    """One eager model per weight source for the whole server, whatever the number of sessions."""
    return pretrained_model(source)


@st.cache_resource(show_spinner="Preparing the fast inference path…", max_entries=4, hash_funcs=SOURCE_HASH)
def fast_pretrained(source: WeightSource) -> FastModel:
    """The same weights with BatchNorm folded in, for classifying only (see `mbv2.fast`)."""
    return fast_model(pretrained_model(source))


@st.cache_resource(
    show_spinner="Measuring which channels matter on the calibration images…", max_entries=4, hash_funcs=SOURCE_HASH
)
def calibration(source: WeightSource) -> Calibration:
    """Input statistics of the pretrained network's layers, for slicing channels (see `mbv2.inherit`)."""
    return calibrate_on(pretrained(source), source.preprocessing, calibration_set())


@st.cache_resource(show_spinner="Inheriting the pretrained weights…", max_entries=8, hash_funcs=SOURCE_HASH)
def inherited(spec: ArchSpec, source: WeightSource) -> Inherited:
    """The edited architecture with the pretrained weights copied, grown or sliced; shared by all sessions."""
    return inherit(pretrained(source), spec, calibration(source))


@st.cache_resource(show_spinner="Preparing the fast inference path…", max_entries=8, hash_funcs=SOURCE_HASH)
def fast_inherited(spec: ArchSpec, source: WeightSource) -> FastModel:
    return fast_model(inherited(spec, source).model)


def fast_network(spec: ArchSpec, source: WeightSource) -> FastModel:
    """Classification uses the fast path (`mbv2.fast`): the eager model's logits in a fraction of the time."""
    return fast_pretrained(source) if spec == source.spec else fast_inherited(spec, source)


@st.cache_data(max_entries=256, show_spinner=False, hash_funcs=SOURCE_HASH)
def predictions(spec: ArchSpec, source: WeightSource, image: Image.Image) -> list[Prediction]:
    """Shared by all sessions: a class classifying the same sample is one inference."""
    return on_inference_thread(classify, fast_network(spec, source), source, image)


@st.cache_resource(show_spinner=False, max_entries=4, hash_funcs=SOURCE_HASH)
def evaluator(source: WeightSource, folder: str, limit: int) -> Evaluator:
    """One per weights and image set, shared: its predictions are cached on disk as well."""
    return Evaluator(
        source, image_set(folder, limit), calibration_set(), model=pretrained(source), calibration=calibration(source)
    )


# --- inside a block: activations of the eager model, through hooks ---------------------------


@st.cache_resource(max_entries=4, show_spinner="Loading pretrained weights…", hash_funcs=SOURCE_HASH)
def hookable_model(spec: ArchSpec, source: WeightSource) -> tuple[MobileNetV2, threading.Lock]:
    """A private copy of the shared model (with inherited weights), so the ablation's hooks never
    reach the Classify view, and a lock, so two sessions never hook it at once."""
    return copy.deepcopy(inherited(spec, source).model), threading.Lock()


def _on_private_copy(spec: ArchSpec, source: WeightSource, compute: Callable[[MobileNetV2], Result]) -> Result:
    model, lock = hookable_model(spec, source)
    with lock:
        return compute(model)


def _batch(source: WeightSource, spec: ArchSpec, images: list[Image.Image]) -> torch.Tensor:
    preprocessing = source.preprocessing.at_resolution(spec.resolution)
    return torch.stack([preprocessing(image) for image in images])


@st.cache_data(max_entries=16, show_spinner="Running the image through the network…", hash_funcs=SOURCE_HASH)
def captured(spec: ArchSpec, source: WeightSource, image: Image.Image, index: int) -> BlockActivations:
    batch = _batch(source, spec, [image])
    return _on_private_copy(spec, source, lambda model: capture_block(model, batch, index))


@st.cache_data(max_entries=16, show_spinner="Counting zeros and negatives in every block…", hash_funcs=SOURCE_HASH)
def activation_statistics(spec: ArchSpec, source: WeightSource, image: Image.Image) -> tuple[BlockStatistics, ...]:
    batch = _batch(source, spec, [image])
    return _on_private_copy(spec, source, lambda model: block_statistics(model, batch))


@st.cache_data(
    max_entries=16, show_spinner="Running the image with and without ReLU6 in the bottlenecks…",
    hash_funcs=SOURCE_HASH,
)
def ablated(spec: ArchSpec, source: WeightSource, image: Image.Image) -> AblationLogits:
    batch = _batch(source, spec, [image])
    return _on_private_copy(spec, source, lambda model: bottleneck_logits(model, batch))


ABLATION_CHUNK = 10  # images per forward pass of the labelled ablation: bounded memory


@st.cache_data(
    max_entries=4, show_spinner="Classifying the labelled images three ways (about a minute)…", hash_funcs=SOURCE_HASH
)
def labelled_ablation(spec: ArchSpec, source: WeightSource, folder: str, limit: int) -> dict[str, float]:
    """Top-1 (%) over `limit` images of a labelled folder for each of `AblationLogits`'s variants: as trained,
    with ReLU6 bottlenecks, and with the control."""
    images = image_set(folder, limit)
    if not images.is_labelled:
        raise EvaluationError(f"{folder} has images without labels; name them <synset>_*.JPEG or use subfolders.")
    labels = torch.tensor(images.labels)
    parts = []
    for start in range(0, len(images.paths), ABLATION_CHUNK):
        paths = images.paths[start : start + ABLATION_CHUNK]
        batch = _batch(source, spec, [open_image(path.read_bytes(), name=path.name) for path in paths])
        parts.append(_on_private_copy(spec, source, lambda model: bottleneck_logits(model, batch)))
    return {
        variant.name: 100 * top1_accuracy(torch.cat([getattr(part, variant.name) for part in parts]), labels)
        for variant in fields(AblationLogits)
    }


@st.cache_data(show_spinner="Averaging the round trip over random matrices…")
def relu_loss_curve() -> dict[int, RoundTripLoss]:
    """Figure 1's losses for every n, averaged over random matrices: the same for everyone, so computed once."""
    return loss_curve()


# --- one thread for every session's forward passes ---------------------------------------------


@st.cache_resource
def _inference_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")


def on_inference_thread(work: Callable[..., Result], *args: object) -> Result:
    """Run a forward pass on the server's one inference thread.

    Two cores gain nothing from two forward passes at once, and glibc keeps what a thread frees in
    that thread's own malloc arena: with every session (a Streamlit thread) running its own, ten
    sessions classifying together held about 10 MiB of freed activations each.
    """
    return _inference_thread().submit(work, *args).result()
