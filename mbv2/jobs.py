"""A queue for heavy work (latency, evaluation, distillation, export), so interactive work never waits.

A server shared by a class has two cores. Heavy jobs take seconds to minutes and would use both,
so every edit, sample switch or view change behind them would wait. Here heavy jobs run one at a
time on their own thread, at the lowest CPU priority: the operating system runs interactive work
first, and a heavy job gets whatever the machine has left. Equal requests from several people
(same `key`) share one job; a job is cancelled once nobody waits for it any more.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from mbv2.errors import MBV2Error, SettingsError

Result = TypeVar("Result")
# What a job calls with its progress (for example done, total); it raises `Cancelled` when the job
# should stop, so the work stops at its next progress report.
Report = Callable[..., None]

LOWEST_PRIORITY = 19  # Linux's largest niceness: the scheduler gives such a thread about 1.5% against normal ones


class QueueFullError(MBV2Error):
    """Too many heavy jobs are waiting; the message says how many and what to do."""


class Cancelled(MBV2Error):
    """The job was cancelled before it finished; nothing it would have produced exists."""


class Job(Generic[Result]):
    """One heavy piece of work: its place in the queue, its latest progress, its result."""

    def __init__(self, title: str, queue: JobQueue):
        self.title = title
        self._queue = queue
        self._future: Future[Result] = Future()
        self._cancelled = threading.Event()
        self._waiters = 1
        self.progress: tuple[object, ...] | None = None  # the arguments of the latest report

    @property
    def place(self) -> int:
        """How many jobs run or wait before this one; 0 once it runs (or has finished)."""
        return self._queue.place_of(self)

    def done(self) -> bool:
        return self._future.done()

    def wait(self, seconds: float) -> bool:
        """True once the job has finished (with a result, an error or cancelled)."""
        try:
            self._future.exception(timeout=seconds)
        except TimeoutError:
            return False
        except Exception:  # noqa: BLE001 (cancelled: still finished)
            pass
        return True

    def result(self) -> Result:
        """The job's result, or the error it raised (`Cancelled` if it was cancelled)."""
        return self._future.result()

    def release(self) -> None:
        """The caller no longer waits: the job is cancelled when nobody else waits for it either."""
        self._queue.release(self)

    def report(self, *progress: object) -> None:
        self.stop_if_cancelled()
        self.progress = progress

    def stop_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled(f"{self.title} was cancelled.")


class JobQueue:
    """Heavy jobs, `workers` at a time at the lowest priority; at most `capacity` waiting."""

    def __init__(self, workers: int = 1, capacity: int = 16, niceness: int = LOWEST_PRIORITY):
        if not 1 <= workers <= (os.cpu_count() or 1):
            raise SettingsError(f"Heavy-job workers must be between 1 and {os.cpu_count() or 1}, got {workers}.")
        self.capacity = capacity
        self._niceness = niceness
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="heavy-job", initializer=self._lower_priority)
        self._lock = threading.RLock()  # cancelling a future runs its done-callback, which takes the lock too
        self._waiting: list[Job] = []  # in order; a job leaves when it starts
        self._running: set[Job] = set()
        self._by_key: dict[Hashable, Job] = {}

    def submit(self, title: str, work: Callable[[Report], Result], key: Hashable | None = None) -> Job[Result]:
        """Queue `work(report)`; with a `key` equal to an unfinished job's, wait for that job instead."""
        with self._lock:
            shared = self._by_key.get(key) if key is not None else None
            if shared is not None:
                shared._waiters += 1
                return shared
            if len(self._waiting) >= self.capacity:
                raise QueueFullError(
                    f"{len(self._waiting)} heavy jobs are already waiting on this server, the most it queues. "
                    "Try again in a minute; what is on the page already stays."
                )
            job: Job[Result] = Job(title, self)
            self._waiting.append(job)
            if key is not None:
                self._by_key[key] = job
        job._future.add_done_callback(lambda _: self._forget(job, key))
        self._executor.submit(self._run, job, work)
        return job

    def place_of(self, job: Job) -> int:
        with self._lock:
            if job not in self._waiting:
                return 0
            return self._waiting.index(job) + len(self._running)

    def release(self, job: Job) -> None:
        with self._lock:
            job._waiters -= 1
            if job._waiters > 0 or job.done():
                return
            job._cancelled.set()
            if job in self._waiting:  # never started: it finishes now, as cancelled
                self._waiting.remove(job)
                job._future.cancel()

    def _run(self, job: Job[Result], work: Callable[[Report], Result]) -> None:
        with self._lock:
            if job not in self._waiting:  # cancelled while waiting
                return
            self._waiting.remove(job)
            self._running.add(job)
            job._future.set_running_or_notify_cancel()
        try:
            job.stop_if_cancelled()  # cancelled between leaving the queue and starting
            job._future.set_result(work(job.report))
        except BaseException as error:  # noqa: BLE001 (handed to whoever waits, as the job's outcome)
            job._future.set_exception(error)
        finally:
            with self._lock:
                self._running.discard(job)

    def _forget(self, job: Job, key: Hashable | None) -> None:
        with self._lock:
            if key is not None and self._by_key.get(key) is job:
                del self._by_key[key]

    def _lower_priority(self) -> None:
        """Linux sets niceness per thread; threads this one starts (torch's OpenMP pool) inherit it."""
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._niceness)
        except (AttributeError, OSError):  # not Linux: the jobs still queue, at normal priority
            pass
