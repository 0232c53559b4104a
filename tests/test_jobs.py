"""The heavy-job queue: places in line, sharing, cancelling, and the low priority that keeps pages fast."""

import os
import threading

import pytest

from mbv2.jobs import Cancelled, JobQueue, QueueFullError


def blocker(started: threading.Event, go: threading.Event):
    def work(report):
        started.set()
        while not go.wait(0.01):
            report()
        return "done"

    return work


@pytest.fixture
def busy_queue():
    """A queue whose one worker is held by a job until `go` is set."""
    queue = JobQueue(workers=1, capacity=2)
    started, go = threading.Event(), threading.Event()
    first = queue.submit("first", blocker(started, go))
    assert started.wait(10)
    yield queue, first, go
    go.set()


def test_jobs_wait_in_line_and_see_their_place(busy_queue):
    queue, first, go = busy_queue
    second = queue.submit("second", lambda report: "second")
    third = queue.submit("third", lambda report: "third")
    assert (first.place, second.place, third.place) == (0, 1, 2)
    go.set()
    assert third.wait(10) and (first.result(), second.result(), third.result()) == ("done", "second", "third")


def test_a_full_queue_says_so(busy_queue):
    queue, _, _ = busy_queue
    queue.submit("second", lambda report: None)
    queue.submit("third", lambda report: None)
    with pytest.raises(QueueFullError, match="2 heavy jobs are already waiting on this server"):
        queue.submit("fourth", lambda report: None)


def test_a_released_waiting_job_never_runs(busy_queue):
    queue, first, go = busy_queue
    ran = threading.Event()
    waiting = queue.submit("waiting", lambda report: ran.set())
    waiting.release()
    assert waiting.done() and first.place == 0
    go.set()
    assert first.wait(10) and not ran.wait(0.2)


def test_a_released_running_job_stops_at_its_next_report(busy_queue):
    _, first, _ = busy_queue
    first.release()
    assert first.wait(10)
    with pytest.raises(Cancelled, match="first was cancelled"):
        first.result()


def test_equal_requests_share_one_job_until_the_last_leaves():
    queue = JobQueue()
    started, go = threading.Event(), threading.Event()
    calls = []

    def work(report):
        calls.append(1)
        return blocker(started, go)(report)

    mine = queue.submit("latency", work, key=("latency", "1.0/224"))
    theirs = queue.submit("latency", work, key=("latency", "1.0/224"))
    assert mine is theirs
    mine.release()  # they still wait: it goes on
    go.set()
    assert theirs.wait(10) and theirs.result() == "done" and calls == [1]


def test_heavy_work_and_the_threads_it_starts_run_at_the_lowest_priority():
    import torch

    def work(report):
        torch.nn.functional.conv2d(torch.randn(1, 32, 64, 64), torch.randn(32, 32, 3, 3))  # starts torch's pool
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    job = JobQueue().submit("priority", work)
    assert job.wait(30) and job.result() == 19
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # this thread is untouched
