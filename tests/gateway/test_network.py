"""The client's HTTP stack (httpx over aiohttp) fails, proxies and pools like httpx's own.

Each failure is staged by a raw socket server that misbehaves on purpose, and checked
both as the httpx error httpcore would raise and as the typed error the client reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from conversations.gateway.client import Backoff, ResponsesClient, Timeouts
from conversations.gateway.errors import GatewayTimeoutError, StreamBrokenError, UnavailableError
from conversations.gateway.events import OutputTextDelta
from conversations.gateway.network import http_client
from conversations.gateway.request import ResponseRequest
from tests.gateway.helpers import collect, make_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
EVENT = b'event: response.created\ndata: {"type":"response.created","response":{}}\n\n'
DELTA = (
    b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","item_id":"m","output_index":0,'
    b'"content_index":0,"delta":"Hi"}\n\n'
)
COMPLETED = (
    b"event: response.completed\n"
    b'data: {"type":"response.completed","response":{"id":"resp_1","status":"completed",'
    b'"output":[]}}\n\n'
)


@dataclass
class RawServer:
    url: str
    requests: list[bytes] = field(default_factory=list)  # the head of each request


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[RawServer]:
    """Serve `handler` on a free local port, after reading each connection's first request."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw.requests.append(await reader.readuntil(b"\r\n\r\n"))
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    raw = RawServer(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    async with server:
        yield raw


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client_for(url: str) -> ResponsesClient:
    return ResponsesClient(f"{url}/v1", "sk-x", backoff=Backoff(initial=0.01, maximum=0.02))


async def event_stream_then(writer: asyncio.StreamWriter, *chunks: bytes) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    for chunk in chunks:
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    await writer.drain()


async def test_refused_connection_is_a_connect_error_not_a_timeout():
    async with http_client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{closed_port()}/")


async def test_connection_closed_before_the_reply_is_a_protocol_error_and_retried():
    async def hang_up(reader, writer):
        pass

    async with raw_server(hang_up) as server:
        url = server.url
        async with http_client() as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post(f"{url}/v1/responses", json={})
        async with client_for(url) as client:
            with pytest.raises(UnavailableError, match="closed the connection"):
                await collect(client, ResponseRequest(model="m", input="Hi"))
    # The client's own retries, and no others: aiohttp retries only idempotent requests.
    assert len(server.requests) == 1 + 3


async def test_connection_reset_before_the_reply_is_retried():
    """A pooled connection the gateway reset (its keep-alive ran out as ours reused it)
    is asked again: nothing was answered, so the answer need not fail."""
    resets = 0

    async def reset_once_then_answer(reader, writer):
        nonlocal resets
        if resets == 0:
            resets += 1
            # Linger 0: closing sends a reset, not an orderly end.
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        await event_stream_then(writer, EVENT, DELTA, COMPLETED, b"")

    async with raw_server(reset_once_then_answer) as server, client_for(server.url) as client:
        events = await collect(client, ResponseRequest(model="m", input="Hi"))
    assert any(isinstance(event, OutputTextDelta) for event in events)
    assert len(server.requests) == 2


async def test_a_reply_that_is_not_http_is_a_protocol_error():
    async def babble(reader, writer):
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async with raw_server(babble) as server, http_client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{server.url}/v1/models")


async def test_connection_lost_mid_stream_is_stream_broken():
    async def cut(reader, writer):
        await event_stream_then(writer, EVENT, DELTA)
        writer.write(b"ff\r\nevent: response.output")  # a chunk that never ends

    async with raw_server(cut) as server:
        url = server.url
        async with http_client() as http, http.stream("GET", f"{url}/") as response:
            with pytest.raises(httpx.RemoteProtocolError):
                await response.aread()
        received = []
        async with client_for(url) as client:
            with pytest.raises(StreamBrokenError, match="connection broke"):
                async for event in client.stream(ResponseRequest(model="m", input="Hi")):
                    received.append(event)
    assert isinstance(received[-1], OutputTextDelta)


async def test_silence_mid_stream_is_a_read_timeout():
    async def stall(reader, writer):
        await event_stream_then(writer, EVENT)
        await asyncio.sleep(5)

    async with (
        raw_server(stall) as server,
        http_client(timeout=0.2) as http,
        http.stream("GET", f"{server.url}/") as response,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()


async def test_proxy_from_the_environment_carries_the_request(monkeypatch):
    async def proxy(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()

    async with raw_server(proxy) as server:
        monkeypatch.setenv("HTTP_PROXY", server.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with http_client() as http:
            response = await http.get("http://gateway.invalid/v1/models")
    assert response.text == "ok"
    assert server.requests[0].startswith(b"GET http://gateway.invalid/v1/models HTTP/1.1")


async def test_cookies_are_sent_once():
    async def set_cookie_then_answer(reader, writer):
        while True:
            writer.write(
                b"HTTP/1.1 200 OK\r\nset-cookie: lb=node-1; Path=/\r\ncontent-length: 2\r\n\r\nok"
            )
            await writer.drain()
            try:
                server.requests.append(await reader.readuntil(b"\r\n\r\n"))
            except asyncio.IncompleteReadError:
                return

    # The cookie jars (httpx's, and aiohttp's by default) keep no cookie of a bare IP.
    async with raw_server(set_cookie_then_answer) as server, http_client() as http:
        url = server.url.replace("127.0.0.1", "localhost")
        await http.get(f"{url}/one")
        await http.get(f"{url}/two")
    first, second = server.requests
    assert b"cookie:" not in first.lower()
    assert second.lower().count(b"cookie: ") == 1 and b"lb=node-1" in second


async def test_pool_limit_holds_and_a_full_pool_times_out(simulator_server):
    timeouts = Timeouts(connect=0.2, read=5, write=5, pool=0.2)
    client = make_client(simulator_server, max_connections=1, timeouts=timeouts, max_retries=0)
    request = ResponseRequest(model="sim-chat", input="Hi")
    async with client:
        slow = client.stream(request, headers={"X-Simulator-Pace": "2"})  # about 5 s
        async with contextlib.aclosing(slow):
            await anext(slow)  # holds the only connection
            with pytest.raises(GatewayTimeoutError):
                await client.create(request)
        # Closing the stream gave the connection back.
        assert (await client.create(request)).output_text
