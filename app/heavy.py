"""Heavy work from the page goes through the server's one job queue (see `mbv2.jobs`)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

import streamlit as st

from mbv2.jobs import JobQueue, Report

Result = TypeVar("Result")
POLL_SECONDS = 0.25  # how often the page looks at the job: its place, its progress, a click that cancels it


@st.cache_resource
def heavy_jobs() -> JobQueue:
    """One queue for the whole server, whatever the number of sessions."""
    return JobQueue()


def run_queued(
    title: str, work: Callable[[Report], Result], show: Callable[..., None], key: Hashable | None = None
) -> Result:
    """`work(report)` in the queue: the page shows its place, then its progress through `show`.

    Any click (Cancel included) reruns the page, which stops this wait; the job is then cancelled
    unless another session waits for the same `key`. Errors of the work are raised here.
    """
    job = heavy_jobs().submit(title, work, key)
    place = st.empty()
    shown = None
    try:
        while not job.wait(POLL_SECONDS):
            ahead = job.place
            if ahead:
                place.info(
                    f"{title}: queued behind {ahead} heavy job{'s' * (ahead > 1)} on this server…",
                    icon=":material/hourglass_top:",
                )
                continue
            place.empty()  # also where Streamlit stops this loop when the page reruns
            if job.progress is not None and job.progress != shown:
                shown = job.progress
                show(*shown)
        place.empty()
        return job.result()
    finally:
        job.release()
