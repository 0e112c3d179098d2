"""Property tests: the websocket frame parser raises nothing but `Malformed`.

The SSE/event parser's properties live in tests/gateway/test_events.py (arbitrary text,
arbitrary event objects and arbitrary stream bytes raise only `GatewayError`).
"""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.pipeline.frames import (
    Malformed,
    id_list,
    optional_id,
    parse_frame,
    required_id,
    text_field,
    turn_options,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
KEYS = ["action", "conversation", "message", "model", "text", "instructions", "attachments"]
frames = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), json_values, max_size=8)


def parse_all(frame: dict) -> None:
    for key in ("conversation", "message", "model"):
        with contextlib.suppress(Malformed):
            optional_id(frame, key)
        with contextlib.suppress(Malformed):
            required_id(frame, key)
    for key in ("text", "instructions", "effort"):
        with contextlib.suppress(Malformed):
            text_field(frame, key)
    with contextlib.suppress(Malformed):
        id_list(frame, "attachments")
    with contextlib.suppress(Malformed):
        turn_options(frame)


@given(st.text(max_size=300) | st.none())
def test_arbitrary_text_raises_only_malformed(text):
    with contextlib.suppress(Malformed):
        parse_all(parse_frame(text))


@given(frames)
@settings(max_examples=300)
def test_arbitrary_json_objects_raise_only_malformed(frame):
    text = json.dumps(frame)  # allow_nan: Infinity and NaN are what json.loads accepts
    with contextlib.suppress(Malformed):
        parse_all(parse_frame(text))


@given(json_values)
def test_ids_are_positive_ints_or_malformed(value):
    try:
        number = optional_id({"id": value}, "id")
    except Malformed:
        return
    assert number is None or (isinstance(number, int) and number > 0)


def test_json_extremes_are_malformed_not_crashes():
    """Infinity (OverflowError in int()) and deep nesting (RecursionError) once escaped."""
    for raw in ("Infinity", "-Infinity", "NaN", "1e400", "9" * 5000, '"9' + "9" * 5000 + '"'):
        with contextlib.suppress(Malformed):
            required_id(parse_frame('{"message": ' + raw + "}"), "message")
    with contextlib.suppress(Malformed):
        parse_frame("[" * 100_000 + "]" * 100_000)
