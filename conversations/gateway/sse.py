"""Turn decoded server-sent events into typed events, and notice how a stream ends.

httpx-sse splits the byte stream into SSE messages (event name + data); this module gives
each message meaning. It is plain synchronous code so it can be tested, and fuzzed, without
a network. Anything unreadable raises `StreamBrokenError`, never a JSON or type error.
Given the API key, it removes it from the data before parsing, so no event can carry it;
the two failure events, which become error messages, are also searched after decoding, in
case the gateway escaped characters of the key. NUL characters are dropped from every
string (PostgreSQL refuses them), but only events that contain one pay for the search.
"""

from __future__ import annotations

import json

from . import fields
from .errors import StreamBrokenError
from .events import TERMINAL_EVENTS, Event, parse_event

__all__ = ["EventStreamParser"]

_FAILURE_EVENT_TYPES = frozenset({"error", "response.failed"})


class EventStreamParser:
    """Parse the messages of one response stream, in order."""

    def __init__(self, *, secret: str | None = None) -> None:
        self.finished = False
        self._secret = secret

    def feed(self, event_name: str, data: str) -> Event | None:
        """Return the typed event for one SSE message, or None for one to skip.

        Skipped: messages after the terminal event, empty data, and the `[DONE]` sentinel
        some gateways copy over from Chat Completions.
        """
        if self.finished:
            return None
        stripped = data.strip()
        if not stripped or stripped == "[DONE]":
            return None
        if self._secret:
            # A gateway may echo the key in an error message; no event may carry it on.
            stripped = stripped.replace(self._secret, "[redacted]")
        if "\x00" in stripped:
            stripped = stripped.replace("\x00", "")
        try:
            payload = json.loads(stripped)
        except (ValueError, RecursionError):
            raise StreamBrokenError(
                f"Malformed data line in the event stream: {stripped[:80]!r}"
            ) from None
        if not isinstance(payload, dict):
            raise StreamBrokenError("An event's data is not a JSON object.")
        event_type = payload.get("type")
        if not isinstance(event_type, str) or not event_type:
            event_type = event_name
        if not event_type:
            raise StreamBrokenError("An event has no type.")
        if "\\u0000" in stripped or event_type in _FAILURE_EVENT_TYPES:
            payload = fields.scrub(payload, self._secret)
        event = parse_event(event_type, payload)
        if isinstance(event, TERMINAL_EVENTS):
            self.finished = True
        return event

    def finish(self) -> None:
        """Raise `StreamBrokenError` if the stream ended before a terminal event."""
        if not self.finished:
            raise StreamBrokenError("The event stream ended without a terminal event.")
