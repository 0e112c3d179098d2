"""What LiteLLM's proxy (1.108.7, no database) does to the Responses API, measured.

Plain httpx against the `litellm_gateway` fixture: LiteLLM converts each call into Chat
Completions for the simulator behind it, whose request log shows what arrived. These are
the facts the app must cope with behind a bridging gateway (reference/gateways.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.support.litellm import TEST_TIMEOUT, RunningLiteLLM

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

TIME_TOOL = {
    "type": "function",
    "name": "get_current_time",
    "description": "Get the current time in a time zone.",
    "parameters": {
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
    },
}


@pytest.fixture
def http(litellm_gateway: RunningLiteLLM) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {litellm_gateway.api_key}"}
    with httpx.Client(base_url=litellm_gateway.base_url, headers=headers, timeout=30) as client:
        yield client


def frames(http: httpx.Client, body: dict) -> list[str]:
    """Return the raw SSE frames of a streamed `/responses` call."""
    response = http.post("/responses", json={**body, "stream": True})
    assert response.status_code == 200, response.text
    return [frame for frame in response.text.split("\n\n") if frame.strip()]


def events(http: httpx.Client, body: dict) -> list[dict]:
    """Return the JSON events of a streamed call, without the trailing [DONE]."""
    return [
        json.loads(frame.split("data: ", 1)[1])
        for frame in frames(http, body)
        if frame != "data: [DONE]"
    ]


def sent_to_backend(gateway: RunningLiteLLM, call) -> list[dict]:
    """Return the chat completions bodies the backend received while `call` ran."""
    before = len(gateway.backend_requests())
    call()
    return gateway.backend_requests()[before:]


def text_of(final: dict) -> str:
    message = next(item for item in final["output"] if item["type"] == "message")
    return message["content"][0]["text"]


def test_stream_is_data_lines_only_ending_with_done(http, litellm_gateway):
    sent = frames(http, {"model": litellm_gateway.chat_model, "input": "Hello"})
    assert sent[-1] == "data: [DONE]"
    assert not any(line.startswith("event:") for frame in sent for line in frame.split("\n"))


def test_stream_event_types_in_order(http, litellm_gateway):
    streamed = events(http, {"model": litellm_gateway.chat_model, "input": "Hello"})
    types = [event["type"] for event in streamed if not event["type"].endswith(".delta")]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_every_event_carries_the_model_alias_on_top(http, litellm_gateway):
    streamed = events(http, {"model": litellm_gateway.chat_model, "input": "Hello"})
    assert {event["model"] for event in streamed} == {"bridged-chat"}
    assert streamed[0]["response"]["model"] == "sim-chat"
    assert streamed[-1]["response"]["model"] == "custom_openai/sim-chat"


def test_response_ids_are_long_blobs(http, litellm_gateway):
    streamed = events(http, {"model": litellm_gateway.chat_model, "input": "Hello"})
    response_id = streamed[-1]["response"]["id"]
    assert response_id.startswith("resp_") and 400 < len(response_id) < 520
    assert streamed[0]["response"]["id"] == response_id


def test_usage_arrives_in_response_completed(http, litellm_gateway):
    streamed = events(http, {"model": litellm_gateway.chat_model, "input": "Hello"})
    usage = streamed[-1]["response"]["usage"]
    assert usage["output_tokens"] == 9 and usage["input_tokens"] == 1
    assert usage["total_tokens"] == 10 and usage["input_tokens_details"]["cached_tokens"] == 0
    assert "usage" not in streamed[0]["response"]


def test_previous_response_id_is_not_echoed_and_history_is_lost(http, litellm_gateway):
    first = events(http, {"model": litellm_gateway.chat_model, "input": "Hi, my name is Ming."})
    first_id = first[-1]["response"]["id"]
    second: list[dict] = []
    body = {
        "model": litellm_gateway.chat_model,
        "input": "What is my name?",
        "previous_response_id": first_id,
    }
    received = sent_to_backend(litellm_gateway, lambda: second.extend(events(http, body)))
    assert received[0]["messages"] == [{"role": "user", "content": "What is my name?"}]
    assert text_of(second[-1]["response"]) == "You haven't told me your name yet."
    assert "previous_response_id" not in second[0]["response"]
    echoed = second[-1]["response"]["previous_response_id"]
    assert echoed.startswith("chatcmpl-") and echoed != first_id


def test_unknown_previous_response_id_is_no_error(http, litellm_gateway):
    body = {"model": litellm_gateway.chat_model, "input": "Hi", "previous_response_id": "resp_x"}
    assert events(http, body)[-1]["type"] == "response.completed"


def test_stored_responses_cannot_be_read_back(http, litellm_gateway):
    response_id = events(http, {"model": litellm_gateway.chat_model, "input": "Hi"})[-1][
        "response"
    ]["id"]
    assert http.get(f"/responses/{response_id}").status_code == 500


def test_reasoning_without_drop_params_is_a_400_with_a_string_code(http, litellm_gateway):
    body = {
        "model": litellm_gateway.reasoning_model,
        "input": "Hi",
        "reasoning": {"effort": "high"},
    }
    response = http.post("/responses", json={**body, "stream": True})
    error = response.json()["error"]
    assert response.status_code == 400
    assert error["message"].startswith("litellm.UnsupportedParamsError: custom_openai does not")
    assert "reasoning_effort" in error["message"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, "400")


def test_reasoning_with_drop_params_vanishes_on_the_way(http, litellm_gateway):
    body = {
        "model": litellm_gateway.lenient_reasoning_model,
        "input": "Hi",
        "reasoning": {"effort": "high", "summary": "auto"},
    }
    streamed: list[dict] = []
    received = sent_to_backend(litellm_gateway, lambda: streamed.extend(events(http, body)))
    assert "reasoning_effort" not in received[0] and "reasoning" not in received[0]
    types = [event["type"] for event in streamed]
    assert "response.reasoning_summary_text.delta" in types
    assert "response.reasoning_summary_part.added" not in types
    delta = next(e for e in streamed if e["type"] == "response.reasoning_summary_text.delta")
    assert "summary_index" not in delta


def test_unknown_model_is_a_400(http):
    response = http.post("/responses", json={"model": "no-such-model", "input": "Hi"})
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "400"
    assert "Invalid model name passed in model=no-such-model" in error["message"]


def test_dead_backend_is_an_http_500_before_any_event(http, litellm_gateway):
    body = {"model": litellm_gateway.dead_model, "input": "Hi", "stream": True}
    response = http.post("/responses", json=body)
    error = response.json()["error"]
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert (error["type"], error["code"]) == ("internal_server_error", "500")
    assert "Connection error" in error["message"]


def test_backend_failing_mid_stream_is_response_failed_with_an_event_line(http):
    sent = frames(http, {"model": "backend-fails-midstream", "input": "Hello there"})
    assert sent[-1] == "data: [DONE]"
    assert sent[-2].startswith("event: response.failed\ndata: ")
    failed = json.loads(sent[-2].split("data: ", 1)[1])
    assert failed["response"]["error"]["code"] == "server_error"


def test_backend_stream_cut_short_is_reported_completed(http):
    final = events(http, {"model": "backend-cut-midstream", "input": "Hello there"})[-1]
    assert final["type"] == "response.completed"
    assert text_of(final["response"]) == "Hello! How"


def test_wrong_key_is_a_400_no_db_connection(litellm_gateway):
    response = httpx.post(
        f"{litellm_gateway.base_url}/responses",
        json={"model": litellm_gateway.chat_model, "input": "Hi"},
        headers={"Authorization": "Bearer sk-wrong"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "No connected db.",
        "type": "no_db_connection",
        "param": None,
        "code": "400",
    }


def test_models_lists_the_configured_aliases(http, litellm_gateway):
    listing = http.get("/models").json()
    assert listing["object"] == "list"
    assert [model["id"] for model in listing["data"]][:2] == ["bridged-chat", "dead-backend"]
    assert litellm_gateway.reasoning_model in [model["id"] for model in listing["data"]]


def test_web_search_tool_becomes_web_search_options_and_no_search(http, litellm_gateway):
    body = {"model": litellm_gateway.chat_model, "input": "Tea", "tools": [{"type": "web_search"}]}
    streamed: list[dict] = []
    received = sent_to_backend(litellm_gateway, lambda: streamed.extend(events(http, body)))
    assert received[0]["web_search_options"] == {"search_context_size": None, "user_location": None}
    assert "tools" not in received[0]
    assert [item["type"] for item in streamed[-1]["response"]["output"]] == ["message"]


@pytest.mark.parametrize(
    "extra",
    [
        {"store": False},
        {"include": ["reasoning.encrypted_content"]},
        {"stream_options": {"include_obfuscation": False}},
    ],
)
def test_openai_only_options_are_dropped_silently(http, litellm_gateway, extra):
    body = {"model": litellm_gateway.chat_model, "input": "Hello", **extra}
    streamed: list[dict] = []
    received = sent_to_backend(litellm_gateway, lambda: streamed.extend(events(http, body)))
    assert streamed[-1]["type"] == "response.completed"
    assert received[0] == {
        "model": "sim-chat",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_max_output_tokens_becomes_max_tokens_and_length_is_incomplete(http, litellm_gateway):
    body = {"model": litellm_gateway.chat_model, "input": "Hello", "max_output_tokens": 16}
    received = sent_to_backend(litellm_gateway, lambda: events(http, body))
    assert received[0]["max_tokens"] == 16
    body = {
        "model": litellm_gateway.chat_model,
        "input": "Write python code",
        "max_output_tokens": 16,
    }
    final = events(http, body)[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_replayed_turns_reach_the_backend_as_chat_messages(http, litellm_gateway):
    call = {"timezone": "Asia/Tokyo"}
    body = {
        "model": litellm_gateway.chat_model,
        "instructions": "Be brief.",
        "tools": [TIME_TOOL],
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello!"}],
            },
            {"type": "message", "role": "user", "content": "What time is it in Tokyo?"},
            {
                "type": "function_call",
                "call_id": "call_abc",
                "name": "get_current_time",
                "arguments": json.dumps(call),
            },
            {"type": "function_call_output", "call_id": "call_abc", "output": '{"time": "10:00"}'},
        ],
    }
    streamed: list[dict] = []
    received = sent_to_backend(litellm_gateway, lambda: streamed.extend(events(http, body)))
    messages = received[0]["messages"]
    assert [message["role"] for message in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
    ]
    assert messages[2]["content"] == [{"type": "text", "text": "Hello!"}]
    assert messages[4]["tool_calls"][0]["function"]["arguments"] == json.dumps(call)
    assert messages[5] == {
        "role": "tool",
        "content": '{"time": "10:00"}',
        "tool_call_id": "call_abc",
    }
    assert received[0]["tools"][0]["function"]["name"] == "get_current_time"
    assert text_of(streamed[-1]["response"]) == "The `get_current_time` tool says: **10:00**."


def test_function_calls_stream_back_as_function_call_items(http, litellm_gateway):
    body = {
        "model": litellm_gateway.chat_model,
        "input": "What time is it in Tokyo?",
        "tools": [TIME_TOOL],
    }
    streamed = events(http, body)
    call = streamed[-1]["response"]["output"][0]
    assert call["type"] == "function_call" and call["name"] == "get_current_time"
    assert call["call_id"].startswith("call_") and call["id"] == f"fc_{call['call_id']}"
    assert json.loads(call["arguments"]) == {"timezone": "Asia/Tokyo"}
    assert "response.function_call_arguments.delta" in [event["type"] for event in streamed]
