"""StreamingASGITransport: the embedded simulator streams, stops and times out like a network."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest

from conversations.gateway.client import ResponsesClient, Timeouts
from conversations.gateway.errors import GatewayTimeoutError, StreamBrokenError, UnavailableError
from conversations.gateway.events import OutputTextDelta, ResponseCompleted
from conversations.gateway.request import ResponseRequest
from conversations.gateway.simulator import Simulator
from conversations.gateway.transport import StreamingASGITransport
from tests.gateway.helpers import collect, streamed_text


@pytest.fixture
def simulator():
    return Simulator(tokens_per_second=2000, first_token_delay=0)


@pytest.fixture
async def embedded(simulator):
    transport = StreamingASGITransport(simulator)
    async with ResponsesClient(
        "http://simulator/v1", transport=transport, timeouts=Timeouts(read=0.5)
    ) as client:
        yield client


async def test_embedded_simulator_answers(embedded):
    events = await collect(embedded, ResponseRequest(model="sim-chat", input="Hello"))
    assert isinstance(events[-1], ResponseCompleted)
    assert events[-1].response.output_text == streamed_text(events)


async def test_first_delta_arrives_while_the_answer_is_still_being_written(embedded, simulator):
    request = ResponseRequest(model="sim-chat", input="Write python code to merge two lists")
    streams_at_first_delta = None
    deltas = 0
    # About 110 tokens at 100 per second: a transport that buffered the response would
    # hand over the first delta only after the app had finished writing it.
    async for event in embedded.stream(request, headers={"X-Simulator-Pace": "100"}):
        if isinstance(event, OutputTextDelta):
            if streams_at_first_delta is None:
                streams_at_first_delta = simulator.active_streams
            deltas += 1
    assert streams_at_first_delta == 1
    assert deltas > 10
    assert simulator.active_streams == 0


async def test_closing_the_stream_early_stops_the_app(embedded, simulator):
    stream = embedded.stream(
        ResponseRequest(model="sim-chat", input="Hello"), headers={"X-Simulator-Pace": "10"}
    )
    async with contextlib.aclosing(stream):
        async for event in stream:
            if isinstance(event, OutputTextDelta):
                assert simulator.active_streams == 1
                break
    assert simulator.active_streams == 0


async def test_cancelling_the_reader_stops_the_app(embedded, simulator):
    async def read_forever() -> None:
        await collect(
            embedded,
            ResponseRequest(model="sim-chat", input="Hello"),
            headers={"X-Simulator-Pace": "1"},
        )

    reader = asyncio.create_task(read_forever())
    while simulator.active_streams == 0:
        await asyncio.sleep(0.01)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert simulator.active_streams == 0


async def test_hang_obeys_the_client_read_timeout(embedded):
    started = time.monotonic()
    # Far longer than the read timeout: a client that ignored it would still be waiting.
    with pytest.raises(GatewayTimeoutError):
        async with asyncio.timeout(10):
            await collect(embedded, ResponseRequest(model="sim-chat+fault=hang", input="Hi"))
    assert time.monotonic() - started >= 0.4  # the read timeout, not an earlier failure


async def test_stall_obeys_the_client_read_timeout(embedded, simulator):
    with pytest.raises(GatewayTimeoutError):
        await collect(embedded, ResponseRequest(model="sim-chat+fault=stall", input="Hi"))
    assert simulator.active_streams == 0


async def test_app_crash_before_responding_is_unavailable():
    async def broken_app(scope, receive, send):
        raise RuntimeError("boom")

    client = ResponsesClient(
        "http://app/v1", transport=StreamingASGITransport(broken_app), max_retries=0
    )
    async with client:
        with pytest.raises(UnavailableError):
            await client.create(ResponseRequest(model="m", input="Hi"))


async def test_app_crash_mid_stream_is_stream_broken():
    async def crashing_app(scope, receive, send):
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b'event: response.created\ndata: {"type":"response.created","response":{}}\n\n'
        await send({"type": "http.response.body", "body": body, "more_body": True})
        raise RuntimeError("boom")

    async with ResponsesClient(
        "http://app/v1", transport=StreamingASGITransport(crashing_app)
    ) as client:
        received = []
        with pytest.raises(StreamBrokenError):
            async for event in client.stream(ResponseRequest(model="m", input="Hi")):
                received.append(event)
    assert [event.type for event in received] == ["response.created"]


async def test_transport_passes_method_path_headers_and_body():
    seen = {}

    async def echo_app(scope, receive, send):
        message = await receive()
        seen.update(method=scope["method"], path=scope["path"], body=message["body"])
        seen["headers"] = dict(scope["headers"])
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-echo", b"yes")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async with httpx.AsyncClient(transport=StreamingASGITransport(echo_app)) as http:
        response = await http.post(
            "http://app/v1/things?x=1", content=b"payload", headers={"X-Test": "1"}
        )
    assert (response.status_code, response.text, response.headers["x-echo"]) == (201, "ok", "yes")
    assert seen["method"] == "POST" and seen["path"] == "/v1/things" and seen["body"] == b"payload"
    assert seen["headers"][b"x-test"] == b"1"
