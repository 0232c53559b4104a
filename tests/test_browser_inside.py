"""The "Inside a block" view in a real browser: each tab renders; screenshots for a person to look at."""

import pytest

from conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

TABS = ("One block, five tensors", "Statistics per stage", "Ablation: ReLU6 in the bottleneck", "Why linear: Figure 1")


def _settled(page, text: str) -> None:
    # On a cold server the page is briefly empty and idle, which `wait_for_app` alone takes for done.
    page.get_by_text(text).first.wait_for()
    wait_for_app(page)


def _screenshots(page, name: str) -> None:
    """What a 1440x900 laptop shows first, and the whole tab (Streamlit scrolls inside the page)."""
    screenshot(page, name)
    page.set_viewport_size({"width": 1440, "height": 2000})
    page.wait_for_timeout(800)
    screenshot(page, f"{name}-full")
    page.set_viewport_size({"width": 1440, "height": 900})


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    wait_for_app(page)


def test_inside_a_block_tabs(page, app_url):
    page.goto(f"{app_url}/?view=inside-a-block")
    _settled(page, "The residual connection joins")  # the tab's last element
    assert page.get_by_text("144 channels of 56×56 values").count() == 2  # expansion and depthwise
    assert page.locator(".js-plotly-plot").count() >= 5
    _screenshots(page, "inside-block")

    _open_tab(page, TABS[1])
    assert page.locator('[data-testid="stDataFrame"]').count() == 1
    _screenshots(page, "inside-statistics")

    _open_tab(page, TABS[2])
    page.get_by_text("ReLU6 after every projection (non-linear bottleneck)").click()
    wait_for_app(page)
    page.get_by_role("button", name="Measure top-1 three ways").wait_for()  # about a minute: the AppTest measures
    _screenshots(page, "inside-ablation")

    _open_tab(page, TABS[3])
    assert page.get_by_text("Black crosses mark the 46% of points").count() == 1
    _screenshots(page, "inside-manifold")
    page.get_by_role("slider").focus()
    page.keyboard.press("End")
    page.get_by_text("Black crosses mark the 0% of points").wait_for()
    wait_for_app(page)
    screenshot(page, "inside-manifold-30")
    assert page.locator('[data-testid="stException"]').count() == 0
