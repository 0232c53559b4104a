"""Two visitors ask for heavy work at once: the second sees its place in the server's queue and can leave it."""

import pytest
from playwright.sync_api import expect

from conftest import add_presets, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def ask_for_latency(page, runs: int) -> None:
    runs_input = page.get_by_label("Timed runs (median of)")
    runs_input.fill(str(runs))  # different settings: two jobs, not one shared
    runs_input.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Measure latency (").click()


def test_a_second_heavy_job_shows_its_place_and_can_be_cancelled(page, browser, app_url):
    page.goto(f"{app_url}/?view=compare")
    wait_for_app(page)
    add_presets(page, "MobileNetV2 1.4/224", "MobileNetV2 1.3/224")
    wait_for_app(page)
    ask_for_latency(page, runs=200)
    page.get_by_role("progressbar").wait_for()

    other = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    other.set_default_timeout(90_000)
    try:
        other.goto(f"{app_url}/?view=compare")
        wait_for_app(other)
        ask_for_latency(other, runs=199)
        queued = other.get_by_text("queued behind 1 heavy job on this server")
        queued.wait_for()
        queued.scroll_into_view_if_needed()
        screenshot(other, "compare-queued")
        other.get_by_role("button", name="Cancel").click()
        wait_for_app(other)
        expect(queued).to_have_count(0)
        expect(other.get_by_role("button", name="Measure latency (1 to go)")).to_be_enabled()
        assert other.locator('[data-testid="stException"]').count() == 0
    finally:
        other.context.close()
    page.get_by_role("button", name="Cancel").click()
    wait_for_app(page)
    assert page.locator('[data-testid="stException"]').count() == 0
