"""The frames a page sends on the chat socket, read strictly.

Frames from the page are JSON objects with an `action`:

    {"action": "watch", "conversation": "12"}
    {"action": "send", "conversation": "12" or "", "text": "...", "model": "3",
     "instructions": "...", "assistant": "5" (a new conversation's)}
    {"action": "stop", "message": "45"}
    {"action": "regenerate", "message": "45", "model": "3"}   (also "retry")
    {"action": "edit", "message": "44", "text": "..."}
    {"action": "branch", "message": "46"}
    {"action": "typing", "conversation": "12"}   (the composer changed: one per 3 s
                                                   reaches the others, the rest are dropped)

Anything else, including a field of the wrong shape, is `Malformed`: the page never
sends it, so the consumer answers with one toast and reads on. Parsing lives apart from
the consumer so that it can be tested (and fuzzed) without a socket.
"""

from __future__ import annotations

import json

from conversations.params import clean_text, parse_id
from conversations.pipeline.plans import TurnOptions

__all__ = [
    "MAX_FRAME_CHARS",
    "Malformed",
    "id_list",
    "is_typing",
    "optional_id",
    "parse_frame",
    "required_id",
    "text_field",
    "turn_options",
]

MAX_FRAME_CHARS = 200_000


class Malformed(Exception):
    """A frame the page should never send."""


def parse_frame(text_data: str | None) -> dict:
    if not text_data or len(text_data) > MAX_FRAME_CHARS:
        raise Malformed("empty or oversized frame")
    try:
        frame = json.loads(text_data)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
        raise Malformed("not JSON") from None
    if not isinstance(frame, dict):
        raise Malformed("not a JSON object")
    return frame


# A typing frame is short; a longer frame is not one, whatever it says.
MAX_TYPING_FRAME_CHARS = 120


def is_typing(text_data: str | None) -> bool:
    """True for a typing frame: one the socket may drop without a word, even when the
    page sends more frames than its budget allows (the page sends it as the user types,
    so a notice would come out of the blue)."""
    if not text_data or len(text_data) > MAX_TYPING_FRAME_CHARS:
        return False
    try:
        frame = json.loads(text_data)
    except ValueError:
        return False
    return isinstance(frame, dict) and frame.get("action") == "typing"


def optional_id(frame: dict, key: str) -> int | None:
    try:
        return parse_id(frame.get(key))
    except ValueError:
        raise Malformed(f"{key} is not an id") from None


def required_id(frame: dict, key: str) -> int:
    number = optional_id(frame, key)
    if number is None:
        raise Malformed(f"{key} is missing")
    return number


def turn_options(frame: dict) -> TurnOptions:
    """Return the composer's per-message choices sent with a frame."""
    return TurnOptions(
        effort=text_field(frame, "effort"),
        summary=text_field(frame, "summary"),
        web_search=frame.get("web_search") == "on",
        attachment_ids=id_list(frame, "attachments"),
        custom_instructions=switch(frame, "custom_instructions"),
        assistant_id=optional_id(frame, "assistant"),
    )


def switch(frame: dict, key: str) -> bool | None:
    """Return a checkbox sent beside a hidden "off" of the same name (so that unticked it
    is still sent): on when its last value is "on"; None when the page sent neither."""
    values = frame.get(key)
    if values is None:
        return None
    if not isinstance(values, list):
        values = [values]
    if not values or not all(value in ("on", "off") for value in values):
        raise Malformed(f"{key} is not on or off")
    return values[-1] == "on"


def id_list(frame: dict, key: str) -> tuple[int, ...]:
    """Return the ids of a field htmx sends as one value or, when repeated, a list."""
    values = frame.get(key) or []
    if not isinstance(values, list):
        values = [values]
    if len(values) > 20:
        raise Malformed(f"too many {key}")
    return tuple(required_id({key: value}, key) for value in values)


def text_field(frame: dict, key: str) -> str:
    value = frame.get(key, "")
    if not isinstance(value, str):
        raise Malformed(f"{key} is not text")
    return clean_text(value)
