"""The app starts in a real browser and every view renders without an exception."""

import pytest

from conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_every_view_opens(page, app_url):
    for slug in ["architecture", "classify", "inside-a-block", "compare"]:
        page.goto(f"{app_url}/?view={slug}")
        wait_for_app(page)
        assert page.locator('[data-testid="stException"]').count() == 0, slug
        screenshot(page, f"smoke-{slug}")
