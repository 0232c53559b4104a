"""Time to a first result in the browser: a new session, and one step of the Figure 1 slider.

This checkout against an earlier one (by default main before issue 14 brought fragments and lazy
imports), side by side in one run: each round starts a fresh server of each version in turn (the
order alternating) and drives it with Debian's Chromium, as a student would:

- the first session after the server starts, and then three more new sessions: time from opening
  the Architecture view to its first count on screen, and to the page being idle;
- three steps of the Figure 1 slider in Inside a block: time from the key press to the new picture.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/session_start.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from appserver import ROOT, app_server
from timing import machine

SHARED = ROOT.parent / "shared"
CHROMIUM = "/usr/bin/chromium"
BEFORE = "a0c77a1^1"  # main just before the merge of issue 14
NEW_SESSIONS = 3
SLIDER_STEPS = 3
FIRST_DIMENSIONS = 3  # the slider's default in both versions
IDLE = (
    "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
    " return app && app.getAttribute('data-test-script-state') === 'notRunning'"
    " && !document.querySelector('[data-testid=\"stStatusWidget\"]'); }"
)


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The tree of `revision` in a temporary git worktree."""
    with tempfile.TemporaryDirectory() as parent:
        path = Path(parent) / "checkout"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(path), revision], cwd=ROOT, check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=True)


def new_page(browser: Browser) -> Page:
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.set_default_timeout(180_000)
    return page


def open_session(browser: Browser, url: str) -> tuple[float, float]:
    """Seconds from opening the Architecture view to its first metric, and to an idle page."""
    page = new_page(browser)
    start = time.perf_counter()
    page.goto(f"{url}/?view=architecture")
    page.locator('[data-testid="stMetric"]').first.wait_for()
    first = time.perf_counter() - start
    page.wait_for_function(IDLE)
    idle = time.perf_counter() - start
    page.context.close()
    return first, idle


def slider_steps(browser: Browser, url: str) -> list[float]:
    """Seconds from each ArrowRight on the Figure 1 slider to the caption of the new n."""
    page = new_page(browser)
    page.goto(f"{url}/?view=inside-a-block")
    page.wait_for_function(IDLE)
    page.get_by_role("tab", name="Why linear: Figure 1").click()
    slider = page.get_by_role("slider")  # the only one on the tab
    slider.wait_for()
    page.wait_for_function(IDLE)
    times = []
    for dimensions in range(FIRST_DIMENSIONS + 1, FIRST_DIMENSIONS + 1 + SLIDER_STEPS):
        slider.focus()
        start = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.get_by_text(f"through ReLU in {dimensions} dimensions").wait_for()
        times.append(time.perf_counter() - start)
        page.wait_for_function(IDLE)
    page.context.close()
    return times


def measure(browser: Browser, root: Path) -> dict[str, list[float]]:
    """One fresh server of the checkout at `root`, with its own empty prediction cache."""
    with tempfile.TemporaryDirectory() as cache, app_server(root, env={"MBV2_CACHE": cache}) as (url, _):
        first_session = open_session(browser, url)
        new_sessions = [open_session(browser, url) for _ in range(NEW_SESSIONS)]
        return {
            "first session after a start: first count": [first_session[0]],
            "first session after a start: page idle": [first_session[1]],
            "new session: first count": [first for first, _ in new_sessions],
            "new session: page idle": [idle for _, idle in new_sessions],
            "one step of the Figure 1 slider": slider_steps(browser, url),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=BEFORE, help=f"the earlier revision (default {BEFORE})")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("MBV2_WEIGHTS", str(SHARED / "weights"))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    print(machine())
    with checkout(args.before) as before, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        versions = {f"before ({args.before})": before, "now": ROOT}
        times: dict[str, dict[str, list[float]]] = {name: {} for name in versions}
        for round_ in range(args.rounds):
            order = list(versions) if round_ % 2 == 0 else list(versions)[::-1]
            for name in order:
                for measurement, values in measure(browser, versions[name]).items():
                    times[name].setdefault(measurement, []).extend(values)
            print(f"round {round_ + 1} of {args.rounds} done", flush=True)
        browser.close()
    before_name, now_name = versions
    print(f"\n| median seconds ({args.rounds} rounds) | before | now | now / before |\n| --- | --- | --- | --- |")
    for measurement, before_values in times[before_name].items():
        old, new = statistics.median(before_values), statistics.median(times[now_name][measurement])
        print(f"| {measurement} | {old:.2f} | {new:.2f} | {new / old:.2f}× |")


if __name__ == "__main__":
    main()
