"""The simulator's Chat Completions endpoint, the backend a bridging gateway talks to."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.gateway.helpers import image_bytes
from tests.support.simulator import RequestLog

TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_time",
        "description": "Get the current time in a time zone.",
        "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
    },
}


@pytest.fixture
async def http(simulator_server):
    headers = {"Authorization": f"Bearer {simulator_server.api_key}"}
    async with httpx.AsyncClient(base_url=simulator_server.base_url, headers=headers) as client:
        yield client


async def chunks(http: httpx.AsyncClient, body: dict) -> list[dict | str]:
    """Return the streamed chunks (and the final "[DONE]"), checking the framing."""
    response = await http.post("/chat/completions", json={**body, "stream": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [frame for frame in response.text.split("\n\n") if frame]
    assert all(frame.startswith("data: ") and "\n" not in frame for frame in frames)
    return [
        frame[6:] if frame == "data: [DONE]" else json.loads(frame.removeprefix("data: "))
        for frame in frames
    ]


def content(streamed: list[dict | str], key: str = "content") -> str:
    return "".join(
        chunk["choices"][0]["delta"].get(key) or ""
        for chunk in streamed
        if isinstance(chunk, dict) and chunk["choices"]
    )


def finish_reason(streamed: list[dict | str]) -> str | None:
    reasons = [
        c["choices"][0]["finish_reason"] for c in streamed if isinstance(c, dict) and c["choices"]
    ]
    return next((reason for reason in reasons if reason), None)


async def test_chat_stream_is_chunks_ending_with_done(http):
    streamed = await chunks(
        http, {"model": "sim-chat", "messages": [{"role": "user", "content": "Hello"}]}
    )
    first = streamed[0]
    assert first["object"] == "chat.completion.chunk" and first["id"].startswith("chatcmpl-")
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert streamed[-1] == "[DONE]"
    assert content(streamed) == "Hello! How can I help you today?"
    assert finish_reason(streamed) == "stop"


async def test_chat_usage_comes_in_a_last_chunk_only_when_asked(http):
    body = {"model": "sim-chat", "messages": [{"role": "user", "content": "Hello"}]}
    plain = await chunks(http, body)
    counted = await chunks(http, {**body, "stream_options": {"include_usage": True}})
    assert all("usage" not in chunk for chunk in plain[:-1])
    last = counted[-2]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 9
    assert all(chunk["usage"] is None for chunk in counted[:-2])


async def test_chat_history_in_messages_is_what_the_model_remembers(http):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi, my name is Ming."},
        {"role": "assistant", "content": "Nice to meet you, Ming!"},
        {"role": "user", "content": [{"type": "text", "text": "What is my name?"}]},
    ]
    streamed = await chunks(http, {"model": "sim-mini", "messages": messages})
    assert content(streamed) == "Your name is Ming."


async def test_chat_tool_call_streams_as_tool_call_deltas(http):
    body = {
        "model": "sim-chat",
        "messages": [{"role": "user", "content": "What time is it in Tokyo?"}],
        "tools": [TIME_TOOL],
    }
    streamed = await chunks(http, body)
    calls = [
        call
        for chunk in streamed
        if isinstance(chunk, dict) and chunk["choices"]
        for call in chunk["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert calls[0]["id"].startswith("call_") and calls[0]["function"]["name"] == "get_current_time"
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert json.loads(arguments) == {"timezone": "Asia/Tokyo"}
    assert finish_reason(streamed) == "tool_calls"


async def test_chat_tool_result_is_used_in_the_answer(http):
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_current_time", "arguments": "{}"},
    }
    messages = [
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"time": "10:00"}'},
    ]
    streamed = await chunks(http, {"model": "sim-chat", "messages": messages, "tools": [TIME_TOOL]})
    assert content(streamed) == "The `get_current_time` tool says: **10:00**."


async def test_chat_tool_message_without_a_call_is_openais_400(http):
    messages = [{"role": "tool", "tool_call_id": "call_x", "content": "42"}]
    response = await http.post(
        "/chat/completions", json={"model": "sim-chat", "messages": messages}
    )
    assert response.status_code == 400
    assert "must be a response to a preceeding message" in response.json()["error"]["message"]


async def test_chat_flat_responses_tool_shape_is_rejected(http):
    tool = {"type": "function", "name": "get_current_time", "parameters": {}}
    body = {"model": "sim-chat", "messages": [{"role": "user", "content": "Hi"}], "tools": [tool]}
    response = await http.post("/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tools[0].function"


async def test_chat_image_url_parts_reach_the_model(http):
    data = base64.b64encode(image_bytes("PNG", 3, 2)).decode()
    part = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, part]}]
    streamed = await chunks(http, {"model": "sim-chat", "messages": messages})
    assert content(streamed).startswith("I received 1 image: PNG, 3\u00d72 pixels")


async def test_chat_max_tokens_cuts_the_answer_with_finish_reason_length(http):
    body = {
        "model": "sim-chat",
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 3,
    }
    streamed = await chunks(http, body)
    assert content(streamed) == "Hello! How"
    assert finish_reason(streamed) == "length"


async def test_chat_reasoning_models_stream_reasoning_content(http):
    body = {
        "model": "sim-reasoner",
        "messages": [{"role": "user", "content": "Hi"}],
        "reasoning_effort": "low",
    }
    streamed = await chunks(http, body)
    assert content(streamed, "reasoning_content").startswith("**Understanding the question**")
    assert content(streamed) == "Hello! How can I help you today?"


async def test_chat_reasoning_effort_on_a_chat_model_is_rejected(http):
    body = {
        "model": "sim-chat",
        "messages": [{"role": "user", "content": "Hi"}],
        "reasoning_effort": "high",
    }
    response = await http.post("/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "reasoning_effort"


async def test_chat_without_stream_returns_one_completion(http):
    body = {"model": "sim-chat", "messages": [{"role": "user", "content": "Hello"}]}
    response = await http.post("/chat/completions", json=body)
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "Hello! How can I help you today?"
    assert completion["usage"]["total_tokens"] == completion["usage"]["prompt_tokens"] + 9


async def test_chat_fault_suffix_gives_the_http_error(http):
    body = {"model": "sim-chat+fault=503", "messages": [{"role": "user", "content": "Hi"}]}
    response = await http.post("/chat/completions", json=body)
    assert response.status_code == 503


async def test_chat_failed_fault_sends_an_error_line_after_some_text(http):
    body = {"model": "sim-chat+fault=failed", "messages": [{"role": "user", "content": "Hello"}]}
    streamed = await chunks(http, body)
    assert streamed[-1]["error"]["type"] == "server_error"
    assert content(streamed[:-1]) == "Hello! How"


async def test_chat_requests_are_recorded_for_tests(http, simulator_server):
    messages = [{"role": "user", "content": "Remember this exact text"}]
    log = RequestLog(simulator_server.app)
    await http.post("/chat/completions", json={"model": "sim-chat", "messages": messages})
    [record] = [r for r in log.all() if r.path == "/v1/chat/completions"]
    assert record.path == "/v1/chat/completions" and record.body["messages"] == messages
