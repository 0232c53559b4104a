"""Edited networks meet images in a real browser: Classify after width 0.75, and the accuracy Pareto plot."""

import pytest
from playwright.sync_api import expect

from conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_classify_after_width_0_75_shows_both_networks(page, app_url):
    page.goto(f"{app_url}/?view=classify&width=0.75")
    page.locator('[data-testid="stSelectbox"]').first.wait_for()
    wait_for_app(page)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Sample image").click()
    page.get_by_role("option", name="cat").click()
    wait_for_app(page)
    expect(page.locator(".js-plotly-plot")).to_have_count(2)  # yours and the original's top-5
    expect(page.get_by_text("Your architecture, 0.75/224 (inherited weights)")).to_be_visible()
    expect(page.get_by_text("Original, 1.0/224 (as trained)")).to_be_visible()
    assert page.get_by_text("width 0.75 instead of 1.0").count() == 1
    page.get_by_text("What was inherited, layer by layer").click()
    wait_for_app(page)
    screenshot(page, "classify-width-0.75")
    assert page.locator('[data-testid="stException"]').count() == 0


def test_accuracy_pareto_plot(page, app_url):
    page.goto(f"{app_url}/?view=compare")
    wait_for_app(page)
    presets = page.get_by_role("combobox", name="TF-slim presets (width/resolution)")
    for name in ("MobileNetV2 1.0/160", "MobileNetV2 1.4/224"):
        presets.click()
        presets.fill(name.split()[-1])
        page.get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Add presets").click()
    page.get_by_role("button", name="Measure top-1 (3 to go)").click()
    page.get_by_role("button", name="All measured").wait_for()
    wait_for_app(page)
    plot = page.locator(".js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    legend = plot.locator(".legend").text_content()
    assert "TF-slim published (trained)" in legend and "Your configurations (inherited weights, no training)" in legend
    assert page.get_by_text("inherited weights, no training, on 50 images from").count() == 1
    page.screenshot(path=str(screenshot(page, "compare-accuracy-pareto")))
    assert page.locator('[data-testid="stException"]').count() == 0
