"""Wait for a condition, never for a fixed time.

A test that sleeps and then asserts fails on a slow machine and wastes time on a fast
one; a test that asserts how long something took fails whenever the machine is busy.
These poll for the state the test is about and fail, saying what did not happen, only
after a deadline generous enough for a loaded CI runner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE = 15.0  # seconds; only reached when something is wrong


def wait_until(
    check: Callable[[], T], *, timeout: float = DEADLINE, interval: float = 0.05, what: str = "it"
) -> T:
    """Call `check` until it returns something true; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        if value := check():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(interval)


async def wait_until_async(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = DEADLINE,
    interval: float = 0.05,
    what: str = "it",
) -> T:
    """Await `check()` until it returns something true; return that value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if value := await check():
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(interval)
