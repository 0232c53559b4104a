"""Placeholder: filled in by its issue."""

import streamlit as st


def render() -> None:
    st.header("classify")
    st.info("Coming soon.")
