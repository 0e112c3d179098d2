"""Parsing SSE messages into typed events: tolerant of gaps, strict about garbage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.gateway import events
from conversations.gateway.client import ResponsesClient
from conversations.gateway.errors import GatewayError, StreamBrokenError, UnanswerableToolCallError
from conversations.gateway.events import (
    ErrorEvent,
    OutputItemAdded,
    OutputTextDelta,
    ReasoningSummaryPartDone,
    ResponseCompleted,
    UnknownEvent,
)
from conversations.gateway.request import ResponseRequest
from conversations.gateway.response import MessageItem
from conversations.gateway.sse import EventStreamParser

EVENT_CLASSES = {
    "response.created": events.ResponseCreated,
    "response.in_progress": events.ResponseInProgress,
    "response.output_item.added": events.OutputItemAdded,
    "response.output_item.done": events.OutputItemDone,
    "response.content_part.added": events.ContentPartAdded,
    "response.content_part.done": events.ContentPartDone,
    "response.output_text.delta": events.OutputTextDelta,
    "response.output_text.done": events.OutputTextDone,
    "response.output_text.annotation.added": events.OutputTextAnnotationAdded,
    "response.refusal.delta": events.RefusalDelta,
    "response.refusal.done": events.RefusalDone,
    "response.reasoning_summary_part.added": events.ReasoningSummaryPartAdded,
    "response.reasoning_summary_part.done": events.ReasoningSummaryPartDone,
    "response.reasoning_summary_text.delta": events.ReasoningSummaryTextDelta,
    "response.reasoning_summary_text.done": events.ReasoningSummaryTextDone,
    "response.reasoning_text.delta": events.ReasoningTextDelta,
    "response.reasoning_text.done": events.ReasoningTextDone,
    "response.web_search_call.in_progress": events.WebSearchCallInProgress,
    "response.web_search_call.searching": events.WebSearchCallSearching,
    "response.web_search_call.completed": events.WebSearchCallCompleted,
    "response.function_call_arguments.delta": events.FunctionCallArgumentsDelta,
    "response.function_call_arguments.done": events.FunctionCallArgumentsDone,
    "response.completed": events.ResponseCompleted,
    "response.incomplete": events.ResponseIncomplete,
    "response.failed": events.ResponseFailed,
    "error": events.ErrorEvent,
}


def feed(data: object, event_name: str = "") -> object:
    return EventStreamParser().feed(event_name, json.dumps(data))


@pytest.mark.parametrize(("event_type", "cls"), EVENT_CLASSES.items())
def test_every_event_type_parses_to_its_class(event_type, cls):
    event = feed({"type": event_type, "sequence_number": 3})
    assert type(event) is cls
    assert event.type == event_type and event.sequence_number == 3


def test_flat_and_nested_error_events_are_one_class():
    flat = feed({"type": "error", "code": "server_error", "message": "boom", "param": None})
    nested = feed(
        {"type": "error", "error": {"type": "x", "code": "server_error", "message": "boom"}}
    )
    assert isinstance(flat, ErrorEvent) and isinstance(nested, ErrorEvent)
    assert (flat.code, flat.message) == (nested.code, nested.message) == ("server_error", "boom")


def test_event_type_falls_back_to_the_event_line():
    event = feed({"delta": "hi", "item_id": "msg_1"}, event_name="response.output_text.delta")
    assert isinstance(event, OutputTextDelta) and event.delta == "hi"


def test_missing_optional_fields_get_defaults():
    event = feed({"type": "response.output_item.added", "item": {"type": "message", "id": "msg_1"}})
    assert isinstance(event, OutputItemAdded)
    assert event.item == MessageItem(id="msg_1", role="assistant", status=None, content=())
    assert event.output_index == 0 and event.sequence_number is None


def test_unknown_fields_are_ignored():
    event = feed(
        {
            "type": "response.reasoning_summary_part.done",
            "part": {"text": "t"},
            "status": "x",
            "new": 1,
        }
    )
    assert event == ReasoningSummaryPartDone(item_id="", output_index=0, summary_index=0, text="t")


def test_wrong_field_type_is_stream_broken():
    with pytest.raises(StreamBrokenError, match="delta"):
        feed({"type": "response.output_text.delta", "delta": 5})


@pytest.mark.parametrize("data", ["[1, 2]", '"text"', "{not json", "{}"])
def test_non_object_or_typeless_data_is_stream_broken(data):
    with pytest.raises(StreamBrokenError):
        EventStreamParser().feed("", data)


@pytest.mark.parametrize("data", ["", "   ", "[DONE]"])
def test_empty_data_and_done_sentinel_are_skipped(data):
    assert EventStreamParser().feed("message", data) is None


def test_messages_after_the_terminal_event_are_ignored():
    parser = EventStreamParser()
    parser.feed("", json.dumps({"type": "error", "message": "boom"}))
    assert parser.finished
    assert parser.feed("", json.dumps({"type": "response.failed", "response": {}})) is None


def test_finish_without_a_terminal_event_is_stream_broken():
    parser = EventStreamParser()
    parser.feed("", json.dumps({"type": "response.created", "response": {}}))
    with pytest.raises(StreamBrokenError, match="without a terminal event"):
        parser.finish()


def test_unknown_event_type_is_kept_and_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="conversations.gateway")
    name = f"response.future_{uuid.uuid4().hex}"
    parsed = [feed({"type": name, "n": number}) for number in range(3)]
    assert all(isinstance(event, UnknownEvent) and event.type == name for event in parsed)
    assert parsed[2].data == {"type": name, "n": 2}
    assert len([record for record in caplog.records if name in record.getMessage()]) == 1


def test_response_object_parses_usage_and_output():
    completed = feed(
        {
            "type": "response.completed",
            "response": {
                "id": "resp_1",
                "status": "completed",
                "model": "m",
                "output": [{"type": "future_item", "x": 1}],
                "usage": {
                    "input_tokens": 3,
                    "output_tokens": 2,
                    "output_tokens_details": {"reasoning_tokens": 1},
                },
            },
        }
    )
    assert isinstance(completed, ResponseCompleted)
    assert completed.response.usage.total_tokens == 5
    assert completed.response.usage.reasoning_tokens == 1
    assert completed.response.output[0].raw == {"type": "future_item", "x": 1}


# Property tests: nothing a gateway sends may escape as anything but a GatewayError.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "type",
        "sequence_number",
        "item_id",
        "output_index",
        "content_index",
        "summary_index",
        "delta",
        "text",
        "part",
        "item",
        "response",
        "annotation",
        "annotation_index",
        "error",
        "code",
        "message",
        "param",
        "arguments",
        "name",
        "refusal",
    ]
)
event_objects = st.dictionaries(field_names, json_values, max_size=8).flatmap(
    lambda fields: st.sampled_from([*EVENT_CLASSES, "unknown.type"]).map(
        lambda event_type: {"type": event_type, **{k: v for k, v in fields.items() if k != "type"}}
    )
)


@given(st.text(max_size=200), st.text(max_size=30))
def test_arbitrary_text_raises_only_gateway_errors(data, event_name):
    with contextlib.suppress(GatewayError):
        EventStreamParser().feed(event_name, data)


@given(event_objects)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_event_objects_raise_only_gateway_errors(payload):
    with contextlib.suppress(GatewayError):
        EventStreamParser().feed("", json.dumps(payload))


@given(st.binary(max_size=300) | event_objects.map(lambda e: f"data: {json.dumps(e)}\n\n".encode()))
@settings(max_examples=60, deadline=None)
def test_arbitrary_stream_bytes_raise_only_gateway_errors(body):
    async def run() -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

        transport = httpx.MockTransport(handler)
        async with ResponsesClient("https://gateway.test/v1", transport=transport) as client:
            try:
                async for _ in client.stream(ResponseRequest(model="m", input="Hi")):
                    pass
            except GatewayError:
                pass

    asyncio.run(run())


# Ids are checked for what the app needs of them, never for a length.

LONG_ID = "resp_" + "x" * 4995  # LiteLLM's ids are hundreds of characters long


def completed(response: dict) -> ResponseCompleted:
    return feed({"type": "response.completed", "response": {"status": "completed", **response}})


def test_ids_of_any_length_are_kept():
    response = completed({"id": LONG_ID, "previous_response_id": LONG_ID + "p"}).response
    delta = feed({"type": "response.output_text.delta", "item_id": LONG_ID, "delta": "a"})
    assert (response.id, response.previous_response_id) == (LONG_ID, LONG_ID + "p")
    assert delta.item_id == LONG_ID


@pytest.mark.parametrize("bad", ["", "   ", "resp_\x00", "resp\n1", "resp\x1b[31m", 42, ["r"]])
def test_unusable_response_id_reads_as_absent_with_a_warning(bad, caplog):
    caplog.set_level(logging.WARNING, logger="conversations.gateway")
    response = completed({"id": bad, "previous_response_id": bad}).response
    assert response.id == "" and response.previous_response_id is None
    assert bad == "" or "unusable 'id'" in caplog.text


def test_a_bad_item_id_repeated_on_every_delta_is_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="conversations.gateway")
    bad = f"msg\t{uuid.uuid4().hex}"
    deltas = [
        feed({"type": "response.output_text.delta", "item_id": bad, "delta": "a"}) for _ in range(5)
    ]
    assert {delta.item_id for delta in deltas} == {""}
    assert len([r for r in caplog.records if "item_id" in r.getMessage()]) == 1


def function_call(call_id: object) -> dict:
    return {
        "type": "function_call",
        "id": "fc_1",
        "call_id": call_id,
        "name": "f",
        "arguments": "{}",
    }


@pytest.mark.parametrize("call_id", [None, "", "call\x00", "\t"])
def test_completed_tool_call_without_a_call_id_is_a_clear_error(call_id):
    with pytest.raises(UnanswerableToolCallError) as caught:
        completed({"id": "r", "output": [function_call(call_id)]})
    assert "no call id" in caught.value.user_message


def test_tool_call_still_in_progress_may_lack_its_call_id():
    event = feed({"type": "response.output_item.added", "item": function_call(None)})
    assert isinstance(event, OutputItemAdded) and event.item.call_id == ""


def test_long_call_id_is_answerable():
    response = completed({"id": "r", "output": [function_call("call_" + "9" * 3000)]}).response
    assert response.function_calls[0].call_id == "call_" + "9" * 3000


# NUL characters: PostgreSQL refuses them in text and JSON, so none get through.


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "response.output_text.delta", "item_id": "m", "delta": "te\u0000a"},
        {"type": "response.refusal.delta", "item_id": "m", "delta": "te\u0000a"},
        {"type": "response.reasoning_summary_text.delta", "item_id": "m", "delta": "te\u0000a"},
        {"type": "response.reasoning_text.done", "item_id": "m", "text": "te\u0000a"},
    ],
)
def test_nul_characters_are_dropped_from_text(payload):
    event = feed(payload)
    assert "\x00" not in repr(event) and "tea" in repr(event)


def test_nul_characters_are_dropped_from_the_final_response_and_its_raw_copy():
    text_part = {
        "type": "output_text",
        "text": "tea\u0000",
        "annotations": [
            {
                "type": "url_citation",
                "url": "https://e.test/\u0000",
                "title": "T\u0000",
                "start_index": 0,
                "end_index": 3,
            }
        ],
    }
    message = {
        "type": "message",
        "id": "msg_1",
        "content": [text_part, {"type": "refusal", "refusal": "no\u0000"}],
    }
    response = completed({"id": "r", "output": [message]}).response
    item = response.output[0]
    assert (item.text, item.refusal, item.citations[0].title) == ("tea", "no", "T")
    assert item.citations[0].url == "https://e.test/"
    assert "\\u0000" not in json.dumps(response.raw)


def test_raw_nul_byte_in_the_data_line_is_dropped_not_fatal():
    event = EventStreamParser().feed(
        "", '{"type": "response.output_text.delta", "item_id": "m", "delta": "te\x00a"}'
    )
    assert event.delta == "tea"


def test_nul_in_an_error_message_is_dropped():
    event = feed({"type": "error", "error": {"code": "server_error", "message": "bo\u0000om"}})
    assert event.message == "boom" and event.as_error().gateway_message == "boom"
