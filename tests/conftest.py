"""Shared fixtures: the real weights and ImageNet images in ../shared/ (never copied here)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from mbv2.classify import pretrained_model
from mbv2.weights import WeightSource, local_source

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MBV2_SHARED", ROOT.parent / "shared"))
WEIGHTS_JSON = SHARED / "weights" / "mobilenet_v2_1.0_224_tf2_ptq.json"
DEV_IMAGES = SHARED / "imagenet-dev"
EVAL_IMAGES = SHARED / "imagenet-eval"
SAMPLE_IMAGES = ROOT / "sample_images"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """An image as the bytes of a file in `fmt` (a Pillow format name), as a user would upload it."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def dev_images() -> list[tuple[Path, str]]:
    """(path, true label) for the 50 labelled ImageNet images; names are `<synset>_<label>`."""
    return [
        (path, path.stem.split("_", 1)[1].replace("_", " "))
        for path in sorted(DEV_IMAGES.glob("*.JPEG"))
    ]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`mbv2 ARGS` in a fresh process with the shared weights, as a user runs it."""
    env = {**os.environ, "MBV2_WEIGHTS": str(WEIGHTS_JSON), "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, "-m", "mbv2.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


@pytest.fixture(scope="session")
def tf_source() -> WeightSource:
    if not WEIGHTS_JSON.is_file():
        pytest.fail(f"The shared weights are missing: {WEIGHTS_JSON}")
    return local_source(WEIGHTS_JSON)


@pytest.fixture(scope="session")
def tf_model(tf_source):
    return pretrained_model(tf_source)


@pytest.fixture(autouse=True, scope="session")
def _private_prediction_cache(tmp_path_factory):
    """Evaluations are cached on disk and the app saves distilled weights: the tests use folders of their own."""
    os.environ["MBV2_CACHE"] = str(tmp_path_factory.mktemp("mbv2-cache"))
    os.environ["MBV2_SAVED_WEIGHTS"] = str(tmp_path_factory.mktemp("saved-weights"))  # not the project's ./weights


PYTEST_MAIN = sys.modules["__main__"]  # taken at import, before any AppTest has run


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Put pytest's `__main__` back after each test.

    AppTest runs the app as `__main__` and leaves it there; a process pool started later
    with "spawn" would then re-run app/main.py in every worker, which cannot import `state`.
    """
    yield
    sys.modules["__main__"] = PYTEST_MAIN


APP = ROOT / "app" / "main.py"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")


# The app as the tests run it: the shared weights, 64 of the eval images to rank channels when slicing,
# and the 50 dev images (disjoint from those) to measure accuracy on.
APP_ENVIRONMENT = {
    "MBV2_WEIGHTS": str(WEIGHTS_JSON), "MBV2_CALIBRATION": str(EVAL_IMAGES), "MBV2_IMAGENET": str(DEV_IMAGES),
}


def app_test(**query):
    """An AppTest of the whole app with the shared weights selected, as a user with a link."""
    from streamlit.testing.v1 import AppTest

    os.environ.update(APP_ENVIRONMENT)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(query)
    return at


PAPER_PARAMS = "3,504,872"  # as the Architecture view shows the paper's total


def metrics(at) -> dict[str, str]:
    """The st.metric values an AppTest shows, by label."""
    return {metric.label: metric.value for metric in at.metric}


def edit_table(at, edited_rows=None, deleted_rows=()):
    """Type cell edits and tick rows to delete the way the browser's data editor reports them, then press
    the table's Apply button."""
    edits = {index: dict(cells) for index, cells in (edited_rows or {}).items()}
    for index in deleted_rows:
        edits.setdefault(index, {})["delete"] = True
    at.session_state[at.data_editor[0].key] = {"edited_rows": edits, "added_rows": [], "deleted_rows": []}
    return at.button(key="stages_table_apply").click().run()


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process (this one by default), from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024


@dataclass(frozen=True)
class AppServer:
    url: str
    pid: int

    def rss_bytes(self) -> int:
        """Resident memory of the server process."""
        return rss_bytes(self.pid)


@pytest.fixture(scope="session")
def app_server():
    """A real `streamlit run app/main.py` on a free localhost port, stopped after the session."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, **APP_ENVIRONMENT}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless=true",
         f"--server.port={port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    else:
        server.kill()
        pytest.fail(f"streamlit did not start: {server.stderr.read().decode()[-2000:]}")
    yield AppServer(url=url, pid=server.pid)
    server.terminate()
    server.wait(timeout=20)


@pytest.fixture(scope="session")
def app_url(app_server) -> str:
    return app_server.url


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Browser tests need Debian's chromium at /usr/bin/chromium (bash .ci/setup installs it).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    """A laptop-sized page; call `wait_for_app(page)` after each navigation."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    yield page
    context.close()


def wait_for_app(page) -> None:
    """Wait until Streamlit has run the script to the end at least once since the last action.

    The app root's `data-test-script-state` is "initial" before the first run, so a cold
    server is not mistaken for a finished one.
    """
    page.wait_for_function(
        "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
        " return app && app.getAttribute('data-test-script-state') === 'notRunning'"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]'); }",
        timeout=120_000,
    )
    page.wait_for_timeout(300)


def add_presets(page, *names: str) -> None:
    """Pick TF-slim presets in Compare's multiselect and add them, as a user does."""
    presets = page.get_by_role("combobox", name="TF-slim presets (width/resolution)")
    for name in names:
        presets.click()
        presets.fill(name.split()[-1])  # the list is virtualised: filter it, then pick
        page.get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Add presets").click()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
