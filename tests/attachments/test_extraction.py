"""The worker processes that read documents: time limit, memory cap, bounded count.

The targets really run in child processes (tests/support/workers.py): the timeout kills
a function that really spins.
"""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest
from django.test import override_settings

from conversations.attachments import extraction
from tests.support import workers
from tests.support.waiting import wait_until


def test_run_returns_what_the_target_returns():
    assert extraction.run(workers.answer, {"text": "读完了"}) == {"text": "读完了"}


def test_run_runs_the_target_in_another_process():
    _, pid = extraction.run(workers.wait_then_answer, "x", 0)

    assert pid != os.getpid()


def test_run_raises_what_the_target_raised():
    with pytest.raises(ValueError, match="the parser gave up"):
        extraction.run(workers.fail)


@override_settings(CHAT_EXTRACT_SECONDS=1)
def test_spinning_target_is_killed_after_the_time_limit():
    before = set(psutil.Process().children(recursive=True))
    started = time.monotonic()

    with pytest.raises(extraction.TimedOut):
        extraction.run(workers.spin)

    assert 1 <= time.monotonic() - started < 5
    left = set(psutil.Process().children(recursive=True)) - before
    assert not [child for child in left if child.status() != psutil.STATUS_ZOMBIE]


def test_target_that_dies_without_answering_fails():
    with pytest.raises(extraction.ExtractionFailed, match="ended with code 3"):
        extraction.run(workers.die)


def test_target_past_the_memory_cap_fails_instead_of_growing():
    megabytes = extraction.MEMORY_LIMIT // (1024 * 1024) + 256

    with pytest.raises(MemoryError):
        extraction.run(workers.allocate, megabytes)


def test_target_under_the_memory_cap_runs():
    assert extraction.run(workers.allocate, 64) == 64 * 1024 * 1024


@override_settings(CHAT_EXTRACT_WORKERS=2)
def test_at_most_the_configured_workers_run_at_once():
    results: list = []

    def read() -> None:
        results.append(extraction.run(workers.wait_then_answer, "done", 0.6))

    threads = [threading.Thread(target=read) for _ in range(5)]
    for thread in threads:
        thread.start()
    wait_until(
        lambda: extraction.SLOTS.busy == 2 and extraction.SLOTS.waiting == 3,
        timeout=10,
        what="two workers running and three waiting",
    )
    for thread in threads:
        thread.join(timeout=20)

    assert [value for value, _ in results] == ["done"] * 5
    assert extraction.SLOTS.busy == 0


def test_a_queue_longer_than_the_workers_serve_is_refused_not_held(settings):
    """Seen in review: one user's slow files could queue threads without end."""
    from conversations.attachments.slots import Busy, Slots

    settings.CHAT_EXTRACT_WORKERS = 1
    slots = Slots("CHAT_EXTRACT_WORKERS")

    with slots.held(), pytest.raises(Busy), slots.held(timeout=0.05):
        pass

    assert (slots.busy, slots.waiting) == (0, 0)
    with slots.held(timeout=0.05):  # free again once the first is done
        assert slots.busy == 1
