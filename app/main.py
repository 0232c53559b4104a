"""MobileNetV2 Explorer: `streamlit run app/main.py`. The UI only draws; `mbv2` computes."""

import os

# Before torch loads OpenMP: idle threads sleep instead of spinning, which matters when several
# sessions (or a neighbour) share 2 cores; spinning threads there slowed inference 5x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

st.set_page_config(page_title="MobileNetV2 Explorer", page_icon="🧭", layout="wide")

from state import VIEWS, current_view  # noqa: E402  (set_page_config must come first)

view = current_view()
VIEWS[view].render()
