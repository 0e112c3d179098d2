"""Recorded SSE transcripts (tests/gateway/data/*.sse) parse correctly, in any chunking.

The transcripts are served by httpx.MockTransport as a streamed body cut into chunks of
various sizes, so line and CRLF handling across chunk boundaries is exercised too.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conversations.gateway.client import ResponsesClient
from conversations.gateway.events import (
    ErrorEvent,
    OutputTextDelta,
    ResponseCompleted,
    ResponseFailed,
    UnknownEvent,
)
from conversations.gateway.request import ResponseRequest
from conversations.gateway.response import Usage
from tests.gateway.helpers import event_types, streamed_text

DATA = Path(__file__).parent / "data"
CHUNK_SIZES = [1, 7, 64, 100_000]


def recorded(name: str, chunk_size: int) -> httpx.MockTransport:
    """Return a transport that answers every request with the transcript `name`."""
    transcript = (DATA / name).read_bytes()

    async def body():
        for start in range(0, len(transcript), chunk_size):
            yield transcript[start : start + chunk_size]

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    return httpx.MockTransport(handler)


async def replay(name: str, chunk_size: int = 100_000) -> list:
    async with ResponsesClient(
        "https://gateway.test/v1", "sk-x", transport=recorded(name, chunk_size)
    ) as client:
        return [event async for event in client.stream(ResponseRequest(model="m", input="Hi"))]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
async def test_real_capture_with_obfuscation_parses(chunk_size):
    events = await replay("plain_answer_obfuscated.sse", chunk_size)
    final = events[-1]
    assert isinstance(final, ResponseCompleted)
    assert [event.sequence_number for event in events] == list(range(10))
    assert streamed_text(events) == final.response.output_text == "Hello there!"
    assert final.response.usage == Usage(13, 0, 4, 0, 17)
    assert final.response.model == "gpt-4.1-mini-2025-04-14"


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
async def test_keepalive_comments_and_crlf_line_endings_parse(chunk_size):
    assert b"\r\n" in (DATA / "keepalive_crlf.sse").read_bytes()
    events = await replay("keepalive_crlf.sse", chunk_size)
    assert event_types(events) == event_types(await replay("plain_answer_obfuscated.sse"))
    assert streamed_text(events) == "Hello there!"


async def test_nested_error_event_ends_the_stream():
    events = await replay("nested_error.sse")
    final = events[-1]
    assert event_types(events) == ["response.created", "response.in_progress", "error"]
    assert isinstance(final, ErrorEvent)
    assert (final.code, final.error_type, final.message) == (
        "too_many_requests",
        "too_many_requests",
        "Too Many Requests",
    )


async def test_flat_error_event_ends_the_stream():
    final = (await replay("flat_error.sse"))[-1]
    assert isinstance(final, ErrorEvent)
    assert final.code == "server_error" and final.param is None and final.sequence_number == 2


async def test_gateway_quirks_are_tolerated():
    events = await replay("gateway_quirks.sse", chunk_size=5)
    final = events[-1]
    assert isinstance(final, ResponseCompleted)
    assert all(event.sequence_number is None for event in events)
    assert final.response.output[0].status is None
    assert final.response.usage == Usage(5, 0, 2, 0, 7)
    assert streamed_text(events) == final.response.output_text == "Hi again"


async def test_unknown_event_types_are_kept_not_fatal():
    events = await replay("gateway_quirks.sse")
    unknown = [event for event in events if isinstance(event, UnknownEvent)]
    assert [event.type for event in unknown] == ["response.gateway.heartbeat"] * 2
    assert unknown[0].data == {"type": "response.gateway.heartbeat", "upstream": "ok"}


async def test_failed_transcript_maps_to_response_failed():
    transcript = (DATA / "nested_error.sse").read_text()
    failed_only = "\n\n".join(
        frame for frame in transcript.split("\n\n") if "event: error" not in frame
    )

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=failed_only)

    async with ResponsesClient(
        "https://gateway.test/v1", transport=httpx.MockTransport(handler)
    ) as client:
        events = [event async for event in client.stream(ResponseRequest(model="m", input="Hi"))]
    assert isinstance(events[-1], ResponseFailed)
    assert events[-1].response.error.code == "rate_limit_exceeded"
    assert not any(isinstance(event, OutputTextDelta) for event in events)
