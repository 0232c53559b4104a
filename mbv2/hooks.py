"""Forward hooks that live only as long as a `with` block, whatever happens inside it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from torch.utils.hooks import RemovableHandle


@contextmanager
def temporary_hooks(handles: Iterable[RemovableHandle]) -> Iterator[None]:
    """Remove `handles` on exit, even when the body raises: a hook left behind would change every
    later forward pass of a model that other callers (and threads) share."""
    handles = list(handles)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
