"""Small helpers shared by the gateway tests."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from PIL import Image

from conversations.gateway.client import Backoff, ResponsesClient, Timeouts
from conversations.gateway.events import Event, OutputTextDelta
from conversations.gateway.request import FunctionTool, ResponseRequest

TIME_TOOL = FunctionTool(
    name="get_current_time",
    description="Get the current time in a time zone.",
    parameters={
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "IANA time zone"}},
        "required": ["timezone"],
        "additionalProperties": False,
    },
)
CALCULATOR_TOOL = FunctionTool(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
        "additionalProperties": False,
    },
)


async def collect(
    client: ResponsesClient, request: ResponseRequest, headers: Mapping[str, str] | None = None
) -> list[Event]:
    """Return every event of one streamed response."""
    return [event async for event in client.stream(request, headers=headers)]


def event_types(events: list[Event]) -> list[str]:
    """Return the wire type of each event."""
    return [event.type for event in events]


def streamed_text(events: list[Event]) -> str:
    """Return the answer text as assembled from the deltas."""
    return "".join(event.delta for event in events if isinstance(event, OutputTextDelta))


def image_bytes(image_format: str, width: int, height: int) -> bytes:
    """Return a real image file of the given format and size."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format=image_format)
    return buffer.getvalue()


def make_client(server: Any, **overrides: Any) -> ResponsesClient:
    """Return a client for a running simulator (see conftest) with quick retries."""
    options: dict[str, Any] = {
        "api_key": server.api_key,
        "timeouts": Timeouts(connect=2, read=5, write=5, pool=2),
        "backoff": Backoff(initial=0.01, maximum=0.05),
    }
    options.update(overrides)
    return ResponsesClient(server.base_url, **options)
