"""A bound on how many heavy jobs of one kind run at once in this process.

Image decodes and document extractions each take a slot; past the setting's number the
next one waits. A semaphore that also counts who holds and who waits, so an operator
(and a test) can see the bound hold. The setting is read on each wait, so a test can
change it without swapping the object under a running job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

__all__ = ["Busy", "Slots"]


class Busy(Exception):
    """No slot came free within the time the caller would wait."""


class Slots:
    """At most `settings.<setting>` holders at once."""

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self._condition = threading.Condition()
        self.busy = 0
        self.waiting = 0

    @contextmanager
    def held(self, *, timeout: float | None = None) -> Iterator[None]:
        """Hold a slot, waiting at most `timeout` seconds (None: as long as it takes)
        before raising `Busy`: a queue of requests that waits without end would hold a
        thread each, past what the slots could ever serve."""
        limit = lambda: getattr(settings, self.setting)  # noqa: E731 - read on each wake
        with self._condition:
            self.waiting += 1
            try:
                free = self._condition.wait_for(lambda: self.busy < limit(), timeout)
            finally:
                self.waiting -= 1
            if not free:
                raise Busy
            self.busy += 1
        try:
            yield
        finally:
            with self._condition:
                self.busy -= 1
                self._condition.notify()
