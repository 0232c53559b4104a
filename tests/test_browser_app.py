"""The architecture editor and the classifier in a real browser, with screenshots for a human eye."""

import pytest
from playwright.sync_api import expect

from conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def metric(page, label: str) -> str:
    card = page.locator('[data-testid="stMetric"]').filter(has_text=label)
    return card.locator('[data-testid="stMetricValue"]').inner_text()


def type_into_cell(page, row: int, column: int, text: str) -> None:
    """Select a cell of the canvas-drawn data editor by keyboard from its first cell, then type into it."""
    box = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    page.mouse.click(box["x"] + 60, box["y"] + 35 + 17)  # first column, first body row
    for key in ["ArrowDown"] * row + ["ArrowRight"] * column:
        page.keyboard.press(key)
    page.keyboard.type(text[0])  # typing opens the cell's editor
    editor = page.locator("input.gdg-input")
    expect(editor).to_have_value(text[0])  # on a busy machine the key can land after a fill: "3" became "33"
    editor.fill(text)
    expect(editor).to_have_value(text)
    editor.press("Enter")
    wait_for_app(page)


def screenshots(page, name: str) -> None:
    """What a 1440x900 laptop shows first, and the whole page (Streamlit scrolls inside the page)."""
    page.locator(".js-plotly-plot").last.wait_for()
    page.wait_for_timeout(500)
    screenshot(page, name)
    page.set_viewport_size({"width": 1440, "height": 2000})
    page.wait_for_timeout(800)
    screenshot(page, f"{name}-full")
    page.set_viewport_size({"width": 1440, "height": 900})


def test_edit_the_table_then_classify_a_sample(page, app_url):
    page.goto(f"{app_url}/?view=architecture")
    page.locator('[data-testid="stMetric"]').first.wait_for()  # a cold server first shows an idle, empty page
    wait_for_app(page)
    assert metric(page, "Multiply-adds") == "300.8M"
    assert metric(page, "Parameters") == "3,504,872"
    screenshots(page, "architecture-paper")

    type_into_cell(page, row=6, column=1, text="640")  # the last row's c: 320 -> 640
    page.wait_for_function("() => document.body.innerText.includes('4,222,312')")
    assert metric(page, "Multiply-adds") == "335.9M"
    assert "6-640-1-1" in page.url  # the link reproduces the edit
    screenshots(page, "architecture-edited")

    type_into_cell(page, row=1, column=3, text="3")  # stride 3 does not exist
    error = page.locator('[data-testid="stAlertContentError"]')
    assert "Row 2: stride s must be 1 or 2, got 3." in error.inner_text()
    assert metric(page, "Parameters") == "4,222,312"  # the last valid result stays
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshots(page, "architecture-invalid")

    page.goto(f"{app_url}/?view=classify")
    page.locator('[data-testid="stSelectbox"]').first.wait_for()
    wait_for_app(page)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Sample image").click()
    page.get_by_role("option", name="coffee").click()
    page.locator('[data-testid="stHeading"]').filter(has_text="espresso").wait_for()
    wait_for_app(page)
    assert page.locator('[data-testid="stImage"]').count() == 2
    assert page.locator(".js-plotly-plot").count() == 1
    screenshots(page, "classify-coffee")
