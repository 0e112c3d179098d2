"""Values read for one user, kept in the process for a few seconds: a turn start reads
its user's limits and model access every time, and they change only when an admin edits
them.

Each cache is cleared by the signals of the rows it was read from, at once and again
when the change commits (a turn that read the old rows in between must not keep them).
Signals reach the process that saved the change only, so the commit also writes a new
version of the cache into Django's cache (Redis in production, shared by every process),
and each process reads that version at most once a second, forgetting its copies when it
moved: an admin's change takes effect at once in the process that saved it and within
about a second everywhere else. If the shared cache cannot be read, copies still expire
after `ttl` seconds (30 for the caches here).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.core.cache import cache
from django.db import transaction

__all__ = ["UserCache"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

# How often a process asks the shared cache whether another process changed the rows.
VERSION_CHECK_SECONDS = 1.0


class UserCache(Generic[T]):
    """A value per user id, computed on a miss and kept for `ttl` seconds."""

    def __init__(
        self,
        name: str,
        *,
        ttl: float,
        max_users: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.version_key = f"usercache:{name}:version"
        self.ttl = ttl
        self.max_users = max_users
        self.clock = clock
        self.entries: dict[int, tuple[float, T]] = {}
        self.generation = 0
        self.lock = threading.Lock()
        self.seen_version: str | None = None
        self.checked_at = float("-inf")

    def get(self, user_id: int, compute: Callable[[], T]) -> T:
        """Return the user's value, from the cache while fresh, else from `compute()`."""
        now = self.clock()
        if now - self.checked_at >= VERSION_CHECK_SECONDS:
            self.follow_other_processes(now)
        found = self.entries.get(user_id)
        if found is not None and found[0] > now:
            return found[1]
        generation = self.generation
        value = compute()
        with self.lock:
            # A clear while `compute` read the database may have come after the read:
            # keep nothing then, the next turn reads again.
            if generation == self.generation:
                if len(self.entries) >= self.max_users:
                    self.entries.clear()
                self.entries[user_id] = (now + self.ttl, value)
        return value

    def clear(self, *args, **kwargs) -> None:
        """Forget every user's value now and when the current transaction commits.

        Takes any arguments, so it can be connected to signals as it is.
        """
        self.forget()
        transaction.on_commit(self.changed_everywhere)

    def changed_everywhere(self) -> None:
        """Forget here, and tell the other processes (through the shared cache) to."""
        self.forget()
        try:
            cache.set(self.version_key, secrets.token_hex(8), timeout=None)
        except Exception:
            logger.warning("could not tell other processes to forget %s", self.version_key)

    def follow_other_processes(self, now: float) -> None:
        """Forget every copy if another process changed the rows since the last look."""
        self.checked_at = now
        try:
            version = cache.get(self.version_key)
        except Exception:
            logger.warning("could not read %s; copies expire by age only", self.version_key)
            return
        if version != self.seen_version:
            self.seen_version = version
            self.forget()

    def forget(self) -> None:
        with self.lock:
            self.generation += 1
            self.entries.clear()
