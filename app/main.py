"""MobileNetV2 Explorer: `streamlit run app/main.py`. The UI only draws; `mbv2` computes.

The entry file routes: it picks the view (sidebar, kept in the URL) and renders it. Views import
`state` for the session's architecture and the shared caches; nothing imports the views but this file.
"""

import os

# Before torch loads OpenMP: idle threads sleep instead of spinning, which matters when several
# sessions (or a neighbour) share 2 cores; spinning threads there slowed inference 5x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

st.set_page_config(page_title="MobileNetV2 Explorer", page_icon="🧭", layout="wide")

from views import architecture, classify, compare, inside  # noqa: E402  (set_page_config must come first)

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


VIEWS[current_view()].render()
