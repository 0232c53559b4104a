"""MobileNetV2 explorer library: architecture spec, model, weights, analysis, classification.

Plain library: it never imports streamlit; the app in `app/` only draws what this computes.
"""
