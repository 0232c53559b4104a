"""Edited networks meet images in a real browser: Classify after width 0.75, the accuracy Pareto plot,
cancelling long work while another visitor classifies, and distillation's live loss."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import add_presets, screenshot, wait_for_app

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
    add_presets(page, "MobileNetV2 1.0/160", "MobileNetV2 1.4/224")
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


def test_measuring_can_be_cancelled_while_another_session_classifies(page, browser, app_url):
    page.goto(f"{app_url}/?view=compare")
    wait_for_app(page)
    add_presets(page, "MobileNetV2 0.5/224", "MobileNetV2 0.75/128", "MobileNetV2 0.35/160")
    page.get_by_role("button", name="Measure top-1 (4 to go)").click()
    page.get_by_role("progressbar").wait_for()

    other = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    other.set_default_timeout(90_000)
    other.goto(f"{app_url}/?view=classify")  # a second visitor, while the first one's evaluation runs
    other.locator('[data-testid="stHeading"]').filter(has_text="Egyptian cat").wait_for()
    other.context.close()

    page.get_by_role("button", name="Cancel").click()
    wait_for_app(page)
    expect(page.get_by_role("progressbar")).to_have_count(0)
    remaining = page.get_by_role("button", name="Measure top-1 (")
    expect(remaining).to_be_enabled()  # what was not finished can be measured later; nothing else was lost
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "compare-cancelled")


def test_distillation_shows_its_loss_live_and_cancel_saves_nothing(page, app_url):
    saved = Path(os.environ["MBV2_SAVED_WEIGHTS"])
    before = set(saved.iterdir())
    page.goto(f"{app_url}/?view=compare&width=0.75")
    wait_for_app(page)
    page.get_by_role("button", name="Distil").click()
    page.get_by_text("Step 10 of 100").wait_for()  # the loss curve is drawn every five steps
    page.get_by_text("Recover by distillation").scroll_into_view_if_needed()
    expect(page.locator('[data-testid="stVegaLiteChart"]')).to_have_count(1)
    screenshot(page, "compare-distilling")
    page.get_by_role("button", name="Cancel").click()
    wait_for_app(page)
    expect(page.get_by_role("progressbar")).to_have_count(0)
    assert page.get_by_text("Top-1, distilled").count() == 0
    assert set(saved.iterdir()) == before  # nothing half-trained was saved
    assert page.locator('[data-testid="stException"]').count() == 0
