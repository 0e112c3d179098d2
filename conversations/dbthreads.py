"""The threads that run database work for websockets and streaming answers.

Channels' `database_sync_to_async` is thread-sensitive: every call from every socket
and every streaming answer in the process queues for one shared thread, and with
CONN_MAX_AGE=0 each call opens and closes its own connection. At a hundred concurrent
answers that one thread was the bottleneck: a new turn waited seconds behind other
answers' checkpoints, and a fifth of its time went on connecting.

The calls made from async code here are independent units (one transaction, or one
read), so they run on a small pool of threads instead (DATABASE_THREADS), and each
thread keeps its connection between calls. A connection that broke is still closed
after the call that noticed, as Django does at the end of a request.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import connections

__all__ = ["in_database_thread"]

P = ParamSpec("P")
R = TypeVar("R")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def in_database_thread(function: Callable[P, R]) -> SyncToAsync:
    """Return an awaitable version of `function` that runs on a database thread."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            keep_usable_connections()

    return SyncToAsync(run, thread_sensitive=False, executor=database_executor())


def database_executor() -> ThreadPoolExecutor:
    """Return the process's database threads, started on first use."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.DATABASE_THREADS, thread_name_prefix="database"
            )
        return _executor


def keep_usable_connections() -> None:
    """Keep this thread's connections for its next call, unless they broke.

    Django closes a connection at the end of each request once it is older than
    CONN_MAX_AGE (0: always). These threads live as long as the process, so their
    connections never age out; one with errors that fails its usability check is closed,
    and the next call opens a fresh one (a pooled one goes back to the pool).
    """
    for connection in connections.all(initialized_only=True):
        connection.close_at = None
        connection.close_if_unusable_or_obsolete()
