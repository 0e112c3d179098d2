"""The threads that run database work for websockets and streaming answers.

Channels' `database_sync_to_async` is thread-sensitive: every call from every socket
and every streaming answer in the process queues for one shared thread, and with
CONN_MAX_AGE=0 each call opens and closes its own connection. At a hundred concurrent
answers that one thread was the bottleneck: a new turn waited seconds behind other
answers' checkpoints, and a fifth of its time went on connecting.

The calls made from async code here are independent units (one transaction, or one
read), so they run on a small pool of threads instead (DATABASE_THREADS). With SQLite
each thread keeps its connection between calls; before each call it passes Django's
health check and after it a broken one is closed. With PostgreSQL the connection goes
back to psycopg's pool after each call: the pool tests a connection before lending it,
so after the server dropped them all, the next call gets a live one.
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
        for connection in connections.all(initialized_only=True):
            connection.close_if_health_check_failed()
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
    """Keep this thread's unpooled connections for its next call, unless they broke.

    Django closes a connection at the end of each request once it is older than
    CONN_MAX_AGE (0: always). These threads live as long as the process, so an unpooled
    connection never ages out; one with errors that fails its usability check is closed,
    and the next call opens a fresh one. A pooled connection goes back to the pool, which
    alone can vouch for it (Django skips its own health check for pooled connections).
    """
    for connection in connections.all(initialized_only=True):
        if "pool" not in connection.settings_dict["OPTIONS"]:
            connection.close_at = None
        connection.close_if_unusable_or_obsolete()
