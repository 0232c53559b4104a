"""Placeholder: filled in by its issue."""

import streamlit as st


def render() -> None:
    st.header("inside")
    st.info("Coming soon.")
