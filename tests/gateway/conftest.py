"""Fixtures for the gateway package's tests: a client for the session's simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conversations.gateway.client import Backoff, ResponsesClient, Timeouts
from tests.support.simulator import RunningSimulator


@pytest.fixture
async def gateway_client(simulator_server: RunningSimulator) -> AsyncIterator[ResponsesClient]:
    """Yield a client for the session's simulator (not `client`: pytest-django owns that)."""
    client = ResponsesClient(
        simulator_server.base_url,
        simulator_server.api_key,
        timeouts=Timeouts(connect=2, read=5, write=5, pool=2),
        backoff=Backoff(initial=0.01, maximum=0.05),  # quick retries keep the tests fast
    )
    async with client:
        yield client
