"""A classroom on one server: N students doing light actions while a few sessions run heavy jobs.

Run on demand (not collected by pytest; `tests/test_classroom.py` runs a small version):
    .venv/bin/python benchmarks/classroom.py --sessions 30 --heavy 2

It starts `streamlit run app/main.py` and drives every session over Streamlit's own websocket
protocol, as the browser does (a rerun carrying the widgets' values), without a browser per
student: thirty Chromiums would take the two cores this measures. Light sessions change the
width (the page must show the parameters the library counts), switch to Classify (the page must
show the top-1 class the library gives for the sample), switch samples, and go back, with a
student's pause between actions. Heavy sessions measure latency in Compare again and again.
It prints p50/p95/max action-to-result time and the server's memory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

from appserver import app_server

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WIDTHS = (0.5, 0.75, 1.0, 1.3)
FINISHED_FOR_RERUN = 2  # ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN: another run follows at once
TEXT_FIELDS = {"heading": "body", "markdown": "body", "alert": "body", "metric": "body", "exception": "message"}


@dataclass
class Page:
    """What one script run drew: its texts and its widgets (label -> element)."""

    texts: list[str] = field(default_factory=list)
    widgets: dict[str, object] = field(default_factory=dict)
    failed: bool = False  # an exception was drawn

    def shows(self, text: str) -> bool:
        return any(text in line for line in self.texts)

    def widget(self, label_start: str):
        return next(widget for label, widget in self.widgets.items() if label.startswith(label_start))


class Session:
    """One browser tab, as Streamlit's server sees it: a websocket and the widget values it sends."""

    def __init__(self, url: str):
        self._url = url.replace("http", "ws", 1) + "/_stcore/stream"
        self._states: dict[str, WidgetState] = {}
        self._query = ""
        self.page = Page()

    async def open(self, query: str) -> Page:
        self._socket = await connect(self._url, max_size=None)
        self._query = query
        return await self._rerun()

    async def close(self) -> None:
        await self._socket.close()

    async def choose(self, label: str, value: object) -> Page:
        """Set a radio, select box or number input found by its label on the current page, and rerun."""
        element = self.page.widget(label)
        state = WidgetState(id=element.id)
        if isinstance(value, str):
            state.string_value = value
        elif isinstance(value, int) and element.data_type == type(element).INT:
            state.int_value = value
        else:
            state.double_value = value
        self._states[element.id] = state
        return await self._rerun()

    async def click(self, label_start: str) -> Page:
        element = self.page.widget(label_start)
        return await self._rerun(WidgetState(id=element.id, trigger_value=True))

    async def _rerun(self, trigger: WidgetState | None = None) -> Page:
        message = BackMsg()
        message.rerun_script.query_string = self._query
        message.rerun_script.widget_states.widgets.extend([*self._states.values(), *([trigger] if trigger else [])])
        await self._socket.send(message.SerializeToString())
        page = Page()
        while True:
            forward = ForwardMsg.FromString(await self._socket.recv())
            kind = forward.WhichOneof("type")
            if kind == "new_session":
                page = Page()  # a rerun asked for by the script itself starts drawing anew
            elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                _add_element(page, forward.delta.new_element)
            elif kind == "script_finished" and forward.script_finished != FINISHED_FOR_RERUN:
                self.page = page
                return page


def _add_element(page: Page, element) -> None:
    """Keep what the benchmark checks of one element the script drew: its text, and a widget under its label."""
    kind = element.WhichOneof("type")
    inner = getattr(element, kind)
    if kind in TEXT_FIELDS:
        page.texts.append(getattr(inner, TEXT_FIELDS[kind]))
        page.failed |= kind == "exception"
    if kind == "metric":
        page.texts.append(inner.label)
    if getattr(inner, "id", "") and hasattr(inner, "label"):
        page.widgets[inner.label] = inner


@dataclass(frozen=True)
class Expected:
    """The library's own answers, which every page must show."""

    params_by_width: dict[float, str]
    top1_by_sample: dict[str, str]


def expected_answers() -> Expected:
    from PIL import Image

    from mbv2.analysis import analyse
    from mbv2.classify import classify, pretrained_model
    from mbv2.fast import fast_model
    from mbv2.spec import ArchSpec
    from mbv2.weights import available_sources

    source = next(source for source in available_sources() if source.is_available_offline())
    model = fast_model(pretrained_model(source))
    samples = sorted(path for path in (ROOT / "sample_images").iterdir() if path.suffix == ".jpg")
    return Expected(
        params_by_width={width: f"{analyse(ArchSpec(width_mult=width)).params:,}" for width in WIDTHS},
        top1_by_sample={
            path.stem.replace("_", " "): classify(model, source, Image.open(path).convert("RGB"), k=1)[0].label
            for path in samples
        },
    )


@dataclass(frozen=True)
class Action:
    name: str
    start: float
    seconds: float
    correct: bool


async def student(url: str, expected: Expected, actions: int, pause: float, rng: random.Random) -> list[Action]:
    """Edit the width, look at Classify, switch samples, go back; check each page against the library."""
    session = Session(url)
    done: list[Action] = []

    async def act(name: str, step, check) -> None:
        start = time.monotonic()
        page = await step
        done.append(Action(name, start, time.monotonic() - start, check(page) and not page.failed))
        await asyncio.sleep(rng.uniform(0.5, 1.5) * pause)

    await act("open", session.open("view=architecture"), lambda page: page.shows("Multiply-adds"))
    samples = list(expected.top1_by_sample)
    for number in range(actions):
        width = WIDTHS[(number + rng.randrange(len(WIDTHS))) % len(WIDTHS)]
        sample = samples[(number + rng.randrange(len(samples))) % len(samples)]
        params = expected.params_by_width[width]
        await act("edit width", session.choose("Width multiplier", width), lambda page: page.shows(params))
        await act("view change", session.choose("View", "Classify"), lambda page: page.shows("Classify"))
        top1 = expected.top1_by_sample[sample]
        await act("sample switch", session.choose("Sample image", sample), lambda page: page.shows(top1))
        await act("view change", session.choose("View", "Architecture"), lambda page: page.shows(params))
    await session.close()
    return done


async def heavy_user(url: str, stop: asyncio.Event) -> list[tuple[float, float]]:
    """Measure latency in Compare again and again (new settings each time); the (start, end) of each."""
    session = Session(url)
    await session.open("view=compare")
    jobs = []
    runs = 200
    while not stop.is_set():
        await session.choose("Timed runs", runs)
        start = time.monotonic()
        page = await session.click("Measure latency")
        if page.failed:
            raise RuntimeError(f"a latency measurement failed: {page.texts}")
        jobs.append((start, time.monotonic()))
        runs -= 1
    await session.close()
    return jobs


async def peak_memory(pid: int, stop: asyncio.Event) -> float:
    """The server's largest resident memory (MiB) until `stop`."""
    peak = 0.0
    while not stop.is_set():
        peak = max(peak, rss_mib(pid))
        await asyncio.sleep(0.5)
    return peak


async def classroom_with_memory(pid: int, *args) -> tuple[list[Action], list[tuple[float, float]], float]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(peak_memory(pid, stop))
    actions, heavy_jobs = await classroom(*args)
    stop.set()
    return actions, heavy_jobs, await sampler


async def classroom(url: str, sessions: int, heavy: int, actions: int, pause: float, expected: Expected):
    stop = asyncio.Event()
    heavy_tasks = [asyncio.create_task(heavy_user(url, stop)) for _ in range(heavy)]
    await asyncio.sleep(2 if heavy else 0)  # the heavy jobs are running when the class starts
    students = [student(url, expected, actions, pause, random.Random(number)) for number in range(sessions)]
    results = await asyncio.gather(*students)
    stop.set()
    return [action for result in results for action in result], [job for jobs in await asyncio.gather(*heavy_tasks)
                                                                  for job in jobs]


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def warm_up(url: str, expected: Expected) -> None:
    """The teacher tries each width once before class: the first visit inherits weights (seconds), later ones
    find them cached for every session."""
    asyncio.run(student(url, expected, actions=len(WIDTHS), pause=0, rng=random.Random(-1)))


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, round(share * (len(values) - 1)))]


def while_heavy(action: Action, heavy_jobs: list[tuple[float, float]]) -> bool:
    """Whether the action began and got its result while one heavy job ran: it did not wait for the job."""
    return any(start <= action.start and action.start + action.seconds <= end for start, end in heavy_jobs)


def report(actions: list[Action], heavy_jobs: list[tuple[float, float]]) -> dict[str, float]:
    light = [action for action in actions if action.name != "open"]
    times = [action.seconds for action in light]
    during = [action.seconds for action in light if while_heavy(action, heavy_jobs)]
    return {
        "actions": len(light), "wrong": ", ".join(action.name for action in actions if not action.correct) or "none",
        "p50": statistics.median(times), "p95": percentile(times, 0.95), "max": max(times),
        "during heavy": len(during), "p95 during heavy": percentile(during, 0.95) if during else float("nan"),
        "opens p95": percentile([a.seconds for a in actions if a.name == "open"], 0.95), "heavy jobs": len(heavy_jobs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--heavy", type=int, default=2, help="sessions measuring latency meanwhile")
    parser.add_argument("--actions", type=int, default=4, help="rounds of four light actions per student")
    parser.add_argument("--pause", type=float, default=3.0, help="a student's mean pause between actions (s)")
    args = parser.parse_args()
    os.environ.setdefault("MBV2_WEIGHTS", str(SHARED / "weights"))  # for the server, and for the answers
    expected = expected_answers()
    with app_server() as (url, pid):
        warm_up(url, expected)
        baseline = rss_mib(pid)
        actions, heavy_jobs, peak = asyncio.run(
            classroom_with_memory(pid, url, args.sessions, args.heavy, args.actions, args.pause, expected)
        )
    numbers = report(actions, heavy_jobs)
    print(f"{args.sessions} sessions x {args.actions * 4} light actions, {args.heavy} heavy sessions "
          f"({numbers['heavy jobs']} latency measurements), mean pause {args.pause} s")
    print(f"  light action to result: p50 {numbers['p50']:.2f} s, p95 {numbers['p95']:.2f} s, "
          f"max {numbers['max']:.2f} s ({numbers['actions']} actions; {numbers['during heavy']} began and ended while a heavy job ran: p95 "
          f"{numbers['p95 during heavy']:.2f} s)")
    print(f"  first page load p95 {numbers['opens p95']:.2f} s; wrong or failed results: {numbers['wrong']}")
    print(f"  server memory: {baseline:.0f} MiB after warm-up, at most {peak:.0f} MiB during the class")


if __name__ == "__main__":
    main()
