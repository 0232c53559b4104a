"""The Compare view in a real browser: add presets, measure latency, read the Pareto plot."""

import pytest
from playwright.sync_api import expect

from conftest import add_presets, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_compare_presets_latency_and_pareto_plot(page, app_url):
    page.goto(f"{app_url}/?view=compare")
    wait_for_app(page)
    page.get_by_role("button", name="Measure latency (1 to go)").wait_for()  # the first run counts the paper's model
    add_presets(page, "MobileNetV2 0.5/160", "MobileNetV2 0.35/96")
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


def test_a_reload_and_a_shared_link_bring_the_list_back(page, browser, app_url):
    page.goto(f"{app_url}/?view=compare")
    page.get_by_role("button", name="Measure latency (1 to go)").wait_for()
    wait_for_app(page)
    add_presets(page, "MobileNetV2 0.5/160")
    page.get_by_role("button", name="Measure latency (2 to go)").wait_for()
    wait_for_app(page)
    rows = page.get_by_test_id("data-grid-canvas").locator("tbody tr")
    expect(rows).to_have_count(2)

    page.reload()  # a new session: only the link carries the list
    page.get_by_role("button", name="Measure latency (2 to go)").wait_for()
    wait_for_app(page)
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("MobileNetV2 0.5/160")

    shared = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()  # someone else opens the link
    shared.goto(page.url)
    shared.get_by_role("button", name="Measure latency (2 to go)").wait_for()
    expect(shared.get_by_test_id("data-grid-canvas").locator("tbody tr").nth(1)).to_contain_text("MobileNetV2 0.5/160")
    shared.context.close()
    assert page.locator('[data-testid="stException"]').count() == 0
