"""What the views share: the selected view, the current architecture, cached results.

Caches are process-wide (`st.cache_resource` / `st.cache_data`), so every browser session
shares one model per configuration and an edit back to a seen configuration is instant.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from torch import nn

from mbv2.analysis import Analysis, analyse
from mbv2.classify import pretrained_model
from mbv2.spec import ArchSpec
from mbv2.weights import WeightSource, available_sources

from views import architecture, classify, compare, inside

VIEWS = {
    "Architecture": architecture,
    "Classify": classify,
    "Inside a block": inside,
    "Compare": compare,
}
VIEW_PARAM = "view"
LOCAL_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"  # ./weights/*.json, gitignored


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
    st.query_params[VIEW_PARAM] = slugs[view]
    return view


SPEC_KEY = "spec"


def current_spec() -> ArchSpec:
    """The last valid architecture the user built (the paper's default at first)."""
    if SPEC_KEY not in st.session_state:
        st.session_state[SPEC_KEY] = ArchSpec()
    return st.session_state[SPEC_KEY]


def set_spec(spec: ArchSpec) -> None:
    st.session_state[SPEC_KEY] = spec


@st.cache_resource(show_spinner="Counting shapes, parameters and multiply-adds with fvcore…", max_entries=256)
def analysis_of(spec: ArchSpec) -> Analysis:
    """Shared by all sessions; `Analysis` is immutable, so sharing it is safe."""
    return analyse(spec)


@st.cache_resource(show_spinner="Looking for weights…", ttl=60)
def weight_sources() -> list[WeightSource]:
    return available_sources(folders=(LOCAL_WEIGHTS,) if LOCAL_WEIGHTS.is_dir() else ())


@st.cache_resource(show_spinner="Loading pretrained weights…", max_entries=4)
def pretrained(source_name: str) -> nn.Module:
    """One model per weight source for the whole server, whatever the number of sessions."""
    source = source_by_name(source_name)
    return pretrained_model(source, progress=False)


def source_by_name(name: str) -> WeightSource:
    return next(source for source in weight_sources() if source.name == name)
