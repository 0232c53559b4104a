"""Placeholder: filled in by its issue."""

import streamlit as st


def render() -> None:
    st.header("compare")
    st.info("Coming soon.")
