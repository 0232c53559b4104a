"""The Compare view in a real browser: add presets, measure latency, read the Pareto plot."""

import pytest
from playwright.sync_api import expect

from conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_compare_presets_latency_and_pareto_plot(page, app_url):
    page.goto(f"{app_url}/?view=compare")
    wait_for_app(page)
    page.get_by_role("button", name="Measure latency (1 to go)").wait_for()  # the first run counts the paper's model
    presets = page.get_by_role("combobox", name="TF-slim presets (width/resolution)")
    for name in ("MobileNetV2 0.5/160", "MobileNetV2 0.35/96"):
        presets.click()
        presets.fill(name.split()[-1])  # the list is virtualised: filter it, then pick
        page.get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Add presets").click()
    page.get_by_role("button", name="Measure latency (3 to go)").click()
    page.get_by_role("button", name="All measured").wait_for()
    wait_for_app(page)
    rows = page.get_by_test_id("data-grid-canvas").locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_contain_text("MobileNetV2 0.35/96")
    screenshot(page, "compare-table")

    page.get_by_role("radio", name="Latency vs multiply-adds").click()
    wait_for_app(page)
    plot = page.locator(".js-plotly-plot")
    expect(plot).to_have_count(1)  # the plot drawn for the previous axis is gone once the rerun settles
    plot.scroll_into_view_if_needed()
    legend = plot.locator(".legend").text_content()
    assert "TF-slim published (Pixel 1 latency)" in legend and "Your configurations (this CPU)" in legend
    assert plot.locator(".scatterlayer .trace").count() == 3  # TF-slim, Pareto front, ours
    assert page.get_by_text("not this CPU").count() == 1  # the caption says whose latency is whose
    page.screenshot(path=str(screenshot(page, "compare-pareto")))  # the viewport, scrolled to the plot

    choice = page.get_by_role("combobox", name="Configuration to export")
    choice.click()
    choice.fill("0.35/96")
    page.keyboard.press("Enter")
    expect(choice).to_have_value("MobileNetV2 0.35/96")
    page.get_by_role("button", name="Prepare TorchScript, operators and ONNX").click()
    onnx = page.get_by_role("button", name="ONNX", exact=True)
    onnx.wait_for()
    onnx.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot(page, "compare-export")))
    assert page.locator('[data-testid="stException"]').count() == 0
