"""MobileNetV2 Explorer: `streamlit run app/main.py`. The UI only draws; `mbv2` computes."""

import streamlit as st

st.set_page_config(page_title="MobileNetV2 Explorer", page_icon="🧭", layout="wide")

from state import VIEWS, current_view  # noqa: E402  (set_page_config must come first)

view = current_view()
VIEWS[view].render()
