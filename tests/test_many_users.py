"""Ten people open the app at once: each gets a correct answer, and the server shares one model."""

import pytest

from conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

SESSIONS = 10
# One MobileNetV2 is 14 MiB of weights; ten per-session copies plus their activations would add
# hundreds of MiB. Shared caches keep the growth to per-session bookkeeping.
MAX_GROWTH_BYTES = 150 * 2**20


def test_ten_concurrent_sessions_share_one_model(browser, app_server):
    warm = browser.new_context(viewport={"width": 1440, "height": 900})
    first = warm.new_page()
    first.goto(f"{app_server.url}/?view=classify")
    wait_for_app(first)
    first.get_by_text("Egyptian cat").first.wait_for(timeout=120_000)
    baseline = app_server.rss_bytes()

    contexts = [browser.new_context(viewport={"width": 1440, "height": 900}) for _ in range(SESSIONS)]
    pages = [context.new_page() for context in contexts]
    try:
        for page in pages:  # start every session before waiting for any, so they run together
            page.goto(f"{app_server.url}/?view=classify", wait_until="commit")
        for page in pages:
            page.set_default_timeout(180_000)
            wait_for_app(page)
            page.get_by_text("Egyptian cat").first.wait_for(timeout=180_000)
            assert page.locator('[data-testid="stException"]').count() == 0
        screenshot(pages[-1], "many-users-last-session")
        growth = app_server.rss_bytes() - baseline
        assert growth < MAX_GROWTH_BYTES, f"the server grew by {growth / 2**20:.0f} MiB for {SESSIONS} sessions"
    finally:
        for context in contexts + [warm]:
            context.close()
