"""The process's gateway client: one per event loop, closed in its loop when the loop ends."""

from __future__ import annotations

import asyncio

from conversations.catalogue.upstream import get_client


async def running_loops_client():
    return get_client()


def test_each_event_loop_gets_its_own_client_closed_when_the_loop_ends(settings):
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    first = asyncio.run(running_loops_client())
    second = asyncio.run(running_loops_client())
    assert first is not second
    assert first.is_closed and second.is_closed


async def test_calls_in_one_loop_share_its_client(settings):
    settings.OPENAI_API_KEY = "sk-test"
    assert get_client() is get_client()
    assert not get_client().is_closed
