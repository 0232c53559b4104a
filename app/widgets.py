"""Widgets more than one view uses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import streamlit as st
from PIL import Image

from mbv2.errors import ImageError
from mbv2.images import MAX_PIXELS, SUPPORTED, open_image
from mbv2.inherit import InheritanceReport
from mbv2.spec import ArchSpec, spec_differences
from mbv2.weights import WeightSource

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_images"
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]
IMAGE_KEY = "current_image"  # (name, bytes): survives switching views, unlike widget state
# What Markdown would turn into emphasis, code, links, HTML, maths or a table inside one line.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]<>#~$|])")


def literal(text: str) -> str:
    """`text` escaped so Streamlit's Markdown (captions, messages) shows it as typed: a file name
    such as "**x**.png" or "[x](y).png" is a name, not formatting or a link."""
    return _MARKDOWN_SYNTAX.sub(r"\\\1", text)


def bullets(items: Iterable[str]) -> str:
    """A Markdown list, one item a line: how every message shows several problems or notes at once."""
    return "\n".join(f"- {item}" for item in items)


def sample_images() -> dict[str, Path]:
    paths = sorted(p for p in SAMPLE_DIR.iterdir() if p.suffix.lower().lstrip(".") in UPLOAD_TYPES)
    return {path.stem.replace("_", " "): path for path in paths}


@st.cache_data(max_entries=32, show_spinner=False)
def _decode(data: bytes, name: str) -> Image.Image:
    return open_image(data, name=name)


def image_picker() -> tuple[str, Image.Image] | None:
    """A sample, an upload or a camera shot, decoded; errors are shown, never raised.

    Only an image that decodes is remembered, so a bad upload never replaces a good image.
    Until a file or a picture arrives, the image chosen before stays in use, and a caption says so.
    """
    origin = st.segmented_control(
        "Image", ["Sample", "Upload", "Camera"], default="Sample", key="image_origin", label_visibility="collapsed"
    )
    chosen: tuple[str, bytes] | None = None
    awaited = ""  # what the user has yet to do when the picker has nothing new
    if origin == "Upload":
        upload = st.file_uploader("Upload an image", type=UPLOAD_TYPES, key="upload", help=upload_limits())
        if upload is not None:
            chosen = (literal(upload.name), upload.getvalue())
        awaited = "upload a file"
    elif origin == "Camera":
        shot = st.camera_input("Take a picture", key="camera")
        if shot is not None:
            chosen = ("camera", shot.getvalue())
        awaited = "take a picture"
    else:
        samples = sample_images()
        names = list(samples)
        remembered = st.session_state.get(IMAGE_KEY, ("",))[0]
        index = names.index(remembered) if remembered in names else 0
        name = st.selectbox("Sample image", names, index=index, key="sample")
        if name is not None:
            chosen = (name, samples[name].read_bytes())
    if chosen is not None:
        name, data = chosen
        try:
            image = _decode(data, name)
        except ImageError as error:
            st.error(str(error))
            return None
        st.session_state[IMAGE_KEY] = chosen
        return name, image
    if IMAGE_KEY not in st.session_state:
        return None
    name, data = st.session_state[IMAGE_KEY]
    st.caption(f"Showing {name} until you {awaited}.")
    return name, _decode(data, name)  # it decoded when it was chosen


def upload_limits() -> str:
    """What the uploader takes; the size limit is the one Streamlit enforces, from .streamlit/config.toml."""
    return f"{SUPPORTED}, up to {st.get_option('server.maxUploadSize')} MB and {MAX_PIXELS // 10**6} megapixels"


def weights_picker(sources: list[WeightSource], key: str = "weights") -> WeightSource:
    """A choice of weights that says where each set comes from and what input it expects.

    The first set already on this machine is preselected, so the app works offline.
    """
    names = [source.name for source in sources]
    offline = {source.name for source in sources if source.is_available_offline()}
    default = next((index for index, name in enumerate(names) if name in offline), 0)
    name = st.selectbox(
        "Weights",
        names,
        index=default,
        key=key,
        format_func=lambda name: name if name in offline else f"{name} (downloads on first use)",
    )
    source = sources[names.index(name)]
    spec = source.spec
    st.caption(
        f"**Trained as** MobileNetV2 {spec.width_mult}/{spec.resolution}, {spec.padding} padding  \n"
        f"**Preprocessing:** {source.preprocessing.describe()}  \n"
        f"**Provenance:** {source.provenance}"
    )
    return source


def network_note(spec: ArchSpec, source: WeightSource, report: InheritanceReport) -> str:
    """Which network runs: the weights' own, or the edited one with inherited weights, and how they fit."""
    if spec == source.spec:
        return f"Network: the weights' own architecture ({source.name})."
    return (
        f"Network: your edited architecture ({'; '.join(spec_differences(spec, source.spec))}) with weights "
        f"inherited from {source.name}, no training. {report.summary()}"
    )
