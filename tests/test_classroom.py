"""A small classroom (benchmarks/classroom.py): light actions get correct results while a heavy job runs."""

import asyncio
import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "classroom.py"


@pytest.fixture(scope="module")
def classroom():
    sys.path.append(str(BENCHMARK.parent))  # as when it runs as a script: its helpers sit beside it
    spec = importlib.util.spec_from_file_location("classroom", BENCHMARK)
    module = sys.modules["classroom"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_light_actions_are_correct_and_do_not_wait_for_a_heavy_job(classroom):
    expected = classroom.expected_answers()
    assert expected.params_by_width[1.0] == "3,504,872"  # the paper's MobileNetV2, counted by the library
    assert expected.top1_by_sample["cat"] == "Egyptian cat"
    with classroom.app_server() as (url, _):
        students = classroom.classroom(url, sessions=3, heavy=1, actions=1, pause=0.5, expected=expected)
        # In a thread of its own: the browser tests' Playwright keeps an event loop running in this one.
        with ThreadPoolExecutor(max_workers=1) as thread:
            actions, heavy_jobs = thread.submit(asyncio.run, students).result()
    assert heavy_jobs, "the heavy session finished no latency measurement"
    assert [action.name for action in actions if not action.correct] == []
    assert len(actions) == 3 * 5  # each student: open, then one round of four light actions
    finished_meanwhile = [action for action in actions if classroom.while_heavy(action, heavy_jobs)]
    assert {"edit width", "sample switch"} & {action.name for action in finished_meanwhile}
