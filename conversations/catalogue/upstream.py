"""The process's gateway client, built from settings.

With OPENAI_API_KEY set it talks to OPENAI_BASE_URL. Without one it talks to the
project's offline simulator in-process, through a transport that streams (httpx's own
ASGITransport buffers whole responses), so `make run` needs no second command.

One client per event loop: its connections (aiohttp's) belong to the loop that opened
them, and it is closed in that loop when the loop shuts down. Under Daphne that is one
client per process.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from conversations.gateway.client import ResponsesClient, Timeouts

__all__ = ["GatewayTraits", "gateway_traits", "get_client", "using_simulator"]

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ResponsesClient] = (
    weakref.WeakKeyDictionary()
)
# Each loop's closing task (the loop itself keeps only weak references to its tasks).
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


def using_simulator() -> bool:
    return not settings.OPENAI_API_KEY


@dataclass(frozen=True, slots=True)
class GatewayTraits:
    """Request fields OpenAI documents that the configured gateway is known to accept.

    Relays (LiteLLM, one-api/new-api) reject or silently drop fields they do not know,
    so these are sent only to gateways known to take them; anything else the app sends
    is learned per model from the gateway's rejections.
    """

    store: bool
    stream_options: bool


def gateway_traits() -> GatewayTraits:
    """Return what the configured gateway accepts: as configured, or judged from its host."""
    if settings.GATEWAY_OPENAI_OPTIONS is not None:
        accepted = settings.GATEWAY_OPENAI_OPTIONS
        return GatewayTraits(store=accepted, stream_options=accepted)
    if using_simulator():
        return GatewayTraits(store=True, stream_options=True)
    host = (urlsplit(settings.OPENAI_BASE_URL).hostname or "").lower()
    if host == "api.openai.com":
        return GatewayTraits(store=True, stream_options=True)
    if host.endswith(".openai.azure.com"):
        # Azure's Responses API keeps responses (`store`) but lags on stream options.
        return GatewayTraits(store=True, stream_options=False)
    return GatewayTraits(store=False, stream_options=False)


def build_client() -> ResponsesClient:
    timeouts = Timeouts(
        connect=settings.GATEWAY_CONNECT_TIMEOUT,
        read=settings.GATEWAY_READ_TIMEOUT,
        write=30.0,
        pool=10.0,
    )
    if not using_simulator():
        return ResponsesClient(
            settings.OPENAI_BASE_URL,
            settings.OPENAI_API_KEY,
            timeouts=timeouts,
            max_retries=settings.GATEWAY_MAX_RETRIES,
            max_connections=settings.GATEWAY_MAX_CONNECTIONS,
        )
    from conversations.gateway.simulator import Simulator
    from conversations.gateway.transport import StreamingASGITransport

    app = Simulator(tokens_per_second=settings.SIMULATOR_TOKENS_PER_SECOND)
    return ResponsesClient(
        "http://simulator/v1",
        timeouts=timeouts,
        max_retries=settings.GATEWAY_MAX_RETRIES,
        transport=StreamingASGITransport(app),
    )


def get_client() -> ResponsesClient:
    """Return the running event loop's client, creating it on first use."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = build_client()
        _closers[loop] = loop.create_task(_close_at_shutdown(client), name="gateway-client")
    return client


async def _close_at_shutdown(client: ResponsesClient) -> None:
    """Wait until the loop shuts down (which cancels every task), then close `client` in it.

    `asyncio.run`, asgiref and pytest-asyncio all cancel the tasks left when their loop
    ends; an aiohttp session that is never closed complains when it is collected.
    """
    try:
        await asyncio.Event().wait()
    finally:
        await client.aclose()
