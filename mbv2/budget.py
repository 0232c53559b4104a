"""One memory budget for the whole process, so concurrent heavy requests queue instead of adding up.

Every request is already below `mbv2.cost.MAX_WORKING_BYTES` on its own; what the budget adds is
that ten visitors asking for ten large designs at once run a few at a time, each reserving its
estimated peak (`mbv2.cost`) for as long as it computes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mbv2.cost import MAX_WORKING_BYTES, gibibytes
from mbv2.errors import ResourceError

# Room for the largest single request plus a few ordinary ones beside it.
PROCESS_MEMORY_BYTES = MAX_WORKING_BYTES + 2 * 2**30


class MemoryBudget:
    """Bytes reserved by the requests running now; a reservation waits until its bytes are free."""

    def __init__(self, total_bytes: int):
        self.total_bytes = total_bytes
        self._free = total_bytes
        self._changed = threading.Condition()

    @property
    def free_bytes(self) -> int:
        with self._changed:
            return self._free

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        if size > self.total_bytes:
            raise ResourceError(
                f"This needs about {gibibytes(size)} of memory; this server's budget is "
                f"{gibibytes(self.total_bytes)}. Choose a smaller design or batch."
            )
        with self._changed:
            self._changed.wait_for(lambda: self._free >= size)
            self._free -= size
        try:
            yield
        finally:
            with self._changed:
                self._free += size
                self._changed.notify_all()


PROCESS_BUDGET = MemoryBudget(PROCESS_MEMORY_BYTES)
