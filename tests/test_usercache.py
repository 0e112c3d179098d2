"""The per-user caches of turn starts forget their copies when another process changes
the rows they were read from (two caches of one name stand for two processes)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from conversations.usercache import VERSION_CHECK_SECONDS, UserCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def empty_shared_cache():
    cache.delete("usercache:test-limits:version")
    yield
    cache.delete("usercache:test-limits:version")


def test_a_change_committed_in_one_process_reaches_the_other_within_a_second():
    clock = Clock()
    here = UserCache("test-limits", ttl=30.0, clock=clock)
    there = UserCache("test-limits", ttl=30.0, clock=clock)
    assert there.get(7, lambda: "old limit") == "old limit"

    here.changed_everywhere()  # what `clear` runs when the admin's save commits

    # Until its next look at the shared version the other process keeps its copy...
    assert there.get(7, lambda: "new limit") == "old limit"
    clock.now += VERSION_CHECK_SECONDS
    # ...and then reads the new rows.
    assert there.get(7, lambda: "new limit") == "new limit"
    assert there.get(7, lambda: "newer") == "new limit"


def test_without_changes_a_copy_lives_for_its_ttl():
    clock = Clock()
    limits = UserCache("test-limits", ttl=30.0, clock=clock)
    assert limits.get(7, lambda: "first read") == "first read"
    clock.now += 29
    assert limits.get(7, lambda: "second read") == "first read"
    clock.now += 2
    assert limits.get(7, lambda: "second read") == "second read"


def test_a_clear_forgets_at_once_in_the_process_that_saved(db):
    limits = UserCache("test-limits", ttl=30.0, clock=Clock())
    assert limits.get(7, lambda: "old limit") == "old limit"
    limits.clear()
    assert limits.get(7, lambda: "new limit") == "new limit"
