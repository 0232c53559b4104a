"""What the views share: the selected view, the current architecture, cached results.

Caches are process-wide (`st.cache_resource` / `st.cache_data`), so every browser session
shares one model per configuration and an edit back to a seen configuration is instant.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import streamlit as st
from torch import nn

from mbv2.analysis import Analysis, analyse
from mbv2.classify import pretrained_model
from mbv2.errors import MBV2Error, SpecError
from mbv2.evaluate import Evaluator, calibrate_on, calibration_set, image_set
from mbv2.fast import fast_model
from mbv2.inherit import Calibration, Inherited, inherit
from mbv2.spec import ArchSpec, Block, blocks_from_rows
from mbv2.weights import WeightSource, available_sources

from views import architecture, classify, compare, inside

VIEWS = {
    "Architecture": architecture,
    "Classify": classify,
    "Inside a block": inside,
    "Compare": compare,
}
VIEW_PARAM = "view"
PRESENTATION_PARAM = "present"  # in the URL, so a reload in front of a class keeps the large type
# For a projector: Streamlit sizes its type in rem, so a larger root size scales text and widgets together;
# captions lose their pale grey, chart text (drawn by plotly in px) is enlarged, and the top bar goes.
PRESENTATION_CSS = """<style>
html { font-size: 20px; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p, [data-testid="stImageCaption"] { font-size: 1rem !important; color: inherit !important; }
.js-plotly-plot .xtick text, .js-plotly-plot .ytick text, .js-plotly-plot .legendtext,
.js-plotly-plot .g-xtitle text, .js-plotly-plot .g-ytitle text, .js-plotly-plot .gtitle,
.js-plotly-plot .annotation-text { font-size: 17px !important; }
header[data-testid="stHeader"], [data-testid="stDecoration"] { display: none; }
[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; }
</style>"""
# ./weights/*.json (gitignored), listed in every weights picker; distilled weights are saved there.
LOCAL_WEIGHTS = Path(os.environ.get("MBV2_SAVED_WEIGHTS") or Path(__file__).resolve().parents[1] / "weights")


def current_view() -> str:
    """The view picked in the sidebar, kept in the URL so a link opens the same view."""
    names = list(VIEWS)
    slugs = {name: name.lower().replace(" ", "-") for name in names}
    requested = st.query_params.get(VIEW_PARAM)
    default = next((name for name, slug in slugs.items() if slug == requested), names[0])
    with st.sidebar:
        st.title("MobileNetV2 Explorer")
        st.caption("Sandler et al., *Inverted Residuals and Linear Bottlenecks*, CVPR 2018")
        view = st.radio("View", names, index=names.index(default), key="view")
        presenting = st.toggle(
            "Presentation mode", value=st.query_params.get(PRESENTATION_PARAM) == "1", key="presentation",
            help="Larger type for captions, chart labels, legends and tiles, and less chrome: for a projector.",
        )
    st.query_params[VIEW_PARAM] = slugs[view]
    if presenting:
        st.query_params[PRESENTATION_PARAM] = "1"
        st.html(PRESENTATION_CSS)
    else:
        st.query_params.pop(PRESENTATION_PARAM, None)
    return view


SPEC_KEY = "spec"


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
            spec = spec_from_query(st.query_params)
        except SpecError as error:
            problems = "\n".join(f"- {problem}" for problem in error.problems)
            st.warning(f"The architecture in this link cannot be built, so the paper's is shown instead:\n{problems}")
            spec = default_spec()
        set_spec(spec)
    return st.session_state[SPEC_KEY]


def set_spec(spec: ArchSpec) -> None:
    """Remember `spec` and put it in the URL (left out when it is the default, to keep links short)."""
    st.session_state[SPEC_KEY] = spec
    is_default = spec == default_spec()
    for name, value in spec_to_query(spec).items():
        if is_default:
            st.query_params.pop(name, None)
        else:
            st.query_params[name] = value


def spec_to_query(spec: ArchSpec) -> dict[str, str]:
    """A compact, readable form: blocks=1-16-1-1,6-24-2-2,... width=1.0 res=224 pad=symmetric."""
    return {
        "blocks": ",".join(f"{block.t}-{block.c}-{block.n}-{block.s}" for block in spec.blocks),
        "width": str(spec.width_mult),
        "res": str(spec.resolution),
        "pad": spec.padding,
    }


def spec_from_query(params: Mapping[str, str]) -> ArchSpec:
    """The inverse of `spec_to_query`; missing parameters keep the default architecture's values.

    Links get edited by hand, so each unreadable parameter gets its own message, all at once.
    """
    changes: dict[str, object] = {}
    problems: list[str] = []
    if "blocks" in params:
        try:
            changes["blocks"] = _blocks_from_link(params["blocks"])
        except SpecError as error:
            problems += error.problems
    numbers = (("width", "width_mult", float, "a number"), ("res", "resolution", int, "a whole number"))
    for name, field, parse, kind in numbers:
        if name in params:
            try:
                changes[field] = parse(params[name])
            except ValueError:
                problems.append(f"{name} in the link must be {kind}, got {params[name]!r}.")
    if problems:
        raise SpecError(problems)
    if "pad" in params:
        changes["padding"] = params["pad"]
    return default_spec().replace(**changes)


def _blocks_from_link(text: str) -> tuple[Block, ...]:
    rows = text.split(",")
    malformed = [
        f"Row {number} of blocks in the link is {row!r}; write each row as t-c-n-s, for example 6-24-2-2."
        for number, row in enumerate(rows, start=1)
        if row.count("-") != 3
    ]
    if malformed:
        raise SpecError(malformed)
    return blocks_from_rows([row.split("-") for row in rows])


@st.cache_resource(show_spinner="Counting shapes, parameters and multiply-adds with fvcore…", max_entries=256)
def analysis_of(spec: ArchSpec) -> Analysis:
    """Shared by all sessions; `Analysis` is immutable, so sharing it is safe."""
    return analyse(spec)


@st.cache_resource(show_spinner="Looking for weights…", ttl=60)
def weight_sources() -> list[WeightSource]:
    return available_sources(folders=(LOCAL_WEIGHTS,) if LOCAL_WEIGHTS.is_dir() else ())


@st.cache_resource(show_spinner="Loading pretrained weights…", max_entries=4)
def pretrained(source_name: str) -> nn.Module:
    """One eager model per weight source for the whole server, whatever the number of sessions."""
    return pretrained_model(source_by_name(source_name))


@st.cache_resource(show_spinner="Preparing the fast inference path…", max_entries=4)
def fast_pretrained(source_name: str) -> nn.Module:
    """The same weights with BatchNorm folded in, for classifying only (see `mbv2.fast`)."""
    return fast_model(pretrained_model(source_by_name(source_name)))


@st.cache_resource(show_spinner="Measuring which channels matter on the calibration images…", max_entries=4)
def calibration(source_name: str) -> Calibration:
    """Input statistics of the pretrained network's layers, for slicing channels (see `mbv2.inherit`)."""
    return calibrate_on(pretrained(source_name), source_by_name(source_name).preprocessing, calibration_set())


@st.cache_resource(show_spinner="Inheriting the pretrained weights…", max_entries=8)
def inherited(spec: ArchSpec, source_name: str) -> Inherited:
    """The edited architecture with the pretrained weights copied, grown or sliced; shared by all sessions."""
    return inherit(pretrained(source_name), spec, calibration(source_name))


@st.cache_resource(show_spinner="Preparing the fast inference path…", max_entries=8)
def fast_inherited(spec: ArchSpec, source_name: str) -> nn.Module:
    return fast_model(inherited(spec, source_name).model)


@st.cache_resource(show_spinner=False, max_entries=4)
def evaluator(source_name: str, folder: str, limit: int) -> Evaluator:
    """One per weights and image set, shared: its predictions are cached on disk as well."""
    return Evaluator(
        source_by_name(source_name), image_set(folder, limit), calibration_set(), model=pretrained(source_name),
        calibration=calibration(source_name),
    )


Result = TypeVar("Result")


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


def source_by_name(name: str) -> WeightSource:
    return next(source for source in weight_sources() if source.name == name)
