"""A cancellation flag shared between the event loop and the worker threads doing model work.

Model work runs in threads that cannot be interrupted from outside; they poll this flag
between chunks, so a cancel or a disconnect stops them within one chunk's compute.
"""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised inside model work when its :class:`CancelToken` was cancelled."""


class CancelToken:
    """A one-way flag: once cancelled, stays cancelled. Thread-safe."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()
