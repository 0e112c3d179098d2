"""The simulator's wire protocol and behaviour, checked with plain httpx over real HTTP."""

# Chinese prompts use full-width punctuation, and image sizes a multiplication sign.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversations.gateway.simulator import MODELS, find_model
from conversations.gateway.simulator.tokens import count_tokens, tokenize
from tests.gateway.helpers import image_bytes
from tests.support.waiting import wait_until_async


@pytest.fixture
async def http(simulator_server):
    headers = {"Authorization": f"Bearer {simulator_server.api_key}"}
    async with httpx.AsyncClient(base_url=simulator_server.base_url, headers=headers) as client:
        yield client


async def stream_events(http: httpx.AsyncClient, body: dict, **kwargs) -> list[dict]:
    """Return the events of a streamed response, checking the SSE framing on the way."""
    response = await http.post("/responses", json={**body, "stream": True}, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for frame in response.text.split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {event['type']}"
        events.append(event)
    return events


async def create(http: httpx.AsyncClient, body: dict) -> dict:
    response = await http.post("/responses", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def error_body(http: httpx.AsyncClient, body: dict) -> tuple[int, dict]:
    response = await http.post("/responses", json=body)
    return response.status_code, response.json()


async def test_ids_have_the_real_prefixes(http):
    tools = [{"type": "web_search"}]
    events = await stream_events(
        http, {"model": "sim-reasoner", "input": "Search tea", "tools": tools}
    )
    final = events[-1]["response"]
    assert re.fullmatch(r"resp_[0-9a-f]{48}", final["id"])
    assert [item["id"][:3] for item in final["output"]] == ["rs_", "ws_", "msg"]


async def test_function_call_ids_have_the_real_prefixes(http):
    tool = {
        "type": "function",
        "name": "get_time",
        "parameters": {"type": "object", "properties": {}},
    }
    final = await create(http, {"model": "sim-chat", "input": "What time is it?", "tools": [tool]})
    call = final["output"][0]
    assert call["id"].startswith("fc_") and call["call_id"].startswith("call_")
    assert call["arguments"] == "{}"


async def test_sequence_numbers_start_at_zero_and_increase_by_one(http):
    events = await stream_events(http, {"model": "sim-chat", "input": "Hello"})
    assert [event["sequence_number"] for event in events] == list(range(len(events)))


async def test_lifecycle_events_carry_the_full_response_object(http):
    events = await stream_events(http, {"model": "sim-chat", "input": "Hello"})
    created, in_progress, completed = events[0], events[1], events[-1]
    assert set(created["response"]) | {"completed_at"} == set(completed["response"])
    assert created["response"]["status"] == in_progress["response"]["status"] == "in_progress"
    assert isinstance(created["response"]["created_at"], int)
    assert created["response"]["model"] == "sim-chat-2025-06-01"


async def test_usage_appears_only_on_the_terminal_event(http):
    events = await stream_events(http, {"model": "sim-chat", "input": "Hello"})
    lifecycle = [event for event in events if "response" in event]
    assert [event["response"]["usage"] is None for event in lifecycle] == [True, True, False]


async def test_deltas_carry_obfuscation_unless_disabled(http):
    body = {"model": "sim-chat", "input": "Hello"}
    padded = await stream_events(http, body)
    plain = await stream_events(http, {**body, "stream_options": {"include_obfuscation": False}})
    delta = next(e for e in padded if e["type"] == "response.output_text.delta")
    assert isinstance(delta["obfuscation"], str) and delta["logprobs"] == []
    assert all("obfuscation" not in event for event in plain)


async def test_previous_response_id_remembers_earlier_turns(http):
    first = await create(http, {"model": "sim-chat", "input": "Hi, my name is Ming."})
    second = await create(
        http, {"model": "sim-mini", "input": "Nice weather.", "previous_response_id": first["id"]}
    )
    third = await create(
        http,
        {"model": "sim-chat", "input": "What is my name?", "previous_response_id": second["id"]},
    )
    assert third["output"][0]["content"][0]["text"] == "Your name is Ming."


async def test_without_previous_response_id_the_name_is_unknown(http):
    answer = await create(http, {"model": "sim-chat", "input": "What is my name?"})
    assert answer["output"][0]["content"][0]["text"] == "You haven't told me your name yet."


async def test_unknown_previous_response_id_is_the_real_400(http):
    status, body = await error_body(
        http, {"model": "sim-chat", "input": "Hi", "previous_response_id": "resp_abc"}
    )
    assert status == 400
    assert body == {
        "error": {
            "message": "Previous response with id 'resp_abc' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }


async def test_instructions_are_not_carried_over(http):
    first = await create(
        http,
        {
            "model": "sim-chat",
            "input": "I love hiking in the Alps",
            "instructions": "Write a title.",
        },
    )
    second = await create(
        http, {"model": "sim-chat", "input": "Hello", "previous_response_id": first["id"]}
    )
    assert first["output"][0]["content"][0]["text"] == "Love Hiking Alps"
    assert second["instructions"] is None
    assert second["output"][0]["content"][0]["text"].startswith("Hello!")


async def test_store_false_responses_are_not_remembered(http):
    first = await create(http, {"model": "sim-chat", "input": "My name is Ming", "store": False})
    status, body = await error_body(
        http, {"model": "sim-chat", "input": "Hi", "previous_response_id": first["id"]}
    )
    assert first["store"] is False
    assert (status, body["error"]["code"]) == (400, "previous_response_not_found")
    assert (await http.get(f"/responses/{first['id']}")).status_code == 404


async def test_chinese_question_gets_a_chinese_answer(http):
    answer = await create(http, {"model": "sim-chat", "input": "你好，今天天气怎么样？"})
    text = answer["output"][0]["content"][0]["text"]
    assert re.search(r"[\u4e00-\u9fff]", text) and text.startswith("你好")


async def test_chinese_name_memory(http):
    first = await create(http, {"model": "sim-chat", "input": "我叫小明。"})
    second = await create(
        http, {"model": "sim-chat", "input": "我叫什么名字？", "previous_response_id": first["id"]}
    )
    assert second["output"][0]["content"][0]["text"] == "你叫小明。"


async def test_code_request_gets_markdown_heading_list_and_fenced_code(http):
    answer = await create(
        http, {"model": "sim-chat", "input": "Write a Rust function to sum numbers"}
    )
    text = answer["output"][0]["content"][0]["text"]
    assert text.startswith("## Rust example")
    assert "\n- " in text
    assert re.search(r"```rust\n.*fn sum_numbers.*\n```", text, re.S)


async def test_title_request_gets_a_few_words(http):
    body = {
        "model": "sim-mini",
        "input": "How do I bake sourdough bread at home?",
        "instructions": "Reply with a short title for this conversation.",
    }
    text = (await create(http, body))["output"][0]["content"][0]["text"]
    assert text == "Bake Sourdough Bread Home"


async def test_token_counts_are_consistent(http):
    body = {"model": "sim-chat", "input": "Count these words, please.", "instructions": "Be brief."}
    counted = (await http.post("/responses/input_tokens", json=body)).json()
    events = await stream_events(http, body)
    usage = events[-1]["response"]["usage"]
    text = events[-1]["response"]["output"][0]["content"][0]["text"]
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert counted == {"object": "response.input_tokens", "input_tokens": usage["input_tokens"]}
    assert usage["input_tokens"] == count_tokens("Count these words, please.") + count_tokens(
        "Be brief."
    )
    assert usage["output_tokens"] == len(deltas) == count_tokens(text)


async def test_continued_turns_bill_history_as_cached_input(http):
    first = await create(http, {"model": "sim-chat", "input": "Hello"})
    second = await create(
        http, {"model": "sim-chat", "input": "Again", "previous_response_id": first["id"]}
    )
    history = first["usage"]["input_tokens"] + first["usage"]["output_tokens"]
    assert second["usage"]["input_tokens_details"]["cached_tokens"] == history
    assert second["usage"]["input_tokens"] == history + 1


async def test_reasoning_on_a_non_reasoning_model_is_rejected(http):
    status, body = await error_body(
        http, {"model": "sim-chat", "input": "Hi", "reasoning": {"effort": "low"}}
    )
    assert status == 400
    assert body["error"]["param"] == "reasoning.effort"
    assert body["error"]["code"] == "unsupported_parameter"


async def test_unsupported_reasoning_effort_is_rejected(http):
    status, body = await error_body(
        http, {"model": "sim-reasoner", "input": "Hi", "reasoning": {"effort": "xhigh"}}
    )
    assert (status, body["error"]["code"]) == (400, "unsupported_value")


async def test_reasoning_effort_defaults_to_medium(http):
    answer = await create(http, {"model": "sim-reasoner", "input": "Hi"})
    assert answer["reasoning"] == {"effort": "medium", "summary": None}
    assert answer["usage"]["output_tokens_details"]["reasoning_tokens"] == 96


@pytest.mark.parametrize(
    ("image_format", "mime_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg")]
)
async def test_image_input_is_acknowledged_with_type_size_and_dimensions(
    http, image_format, mime_type
):
    data = image_bytes(image_format, 64, 48)
    url = f"data:{mime_type};base64,{base64.b64encode(data).decode()}"
    content = [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": url, "detail": "auto"},
    ]
    answer = await create(
        http, {"model": "sim-chat", "input": [{"role": "user", "content": content}]}
    )
    text = answer["output"][0]["content"][0]["text"]
    assert text.startswith(
        f"I received 1 image: {image_format}, 64×48 pixels, {len(data):,} bytes."
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("data:text/plain;base64,aGVsbG8=", "unsupported MIME type 'text/plain'"),
        ("data:image/png;base64,@@@", "invalid base64"),
        ("data:image/png;base64,aGVsbG8=", "not a PNG, JPEG, GIF or WebP image"),
        ("not a url", "invalid value"),
    ],
)
async def test_invalid_image_data_url_is_the_real_400(http, url, reason):
    content = [{"type": "input_text", "text": "Hi"}, {"type": "input_image", "image_url": url}]
    status, body = await error_body(
        http, {"model": "sim-chat", "input": [{"role": "user", "content": content}]}
    )
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "input[0].content[1].image_url"
    assert body["error"]["code"] == "invalid_value"
    assert reason in body["error"]["message"]


async def test_nested_chat_completions_tool_format_is_rejected(http):
    tool = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
    status, body = await error_body(http, {"model": "sim-chat", "input": "Hi", "tools": [tool]})
    assert status == 400
    assert body["error"]["message"] == "Missing required parameter: 'tools[0].name'."


async def test_text_only_model_rejects_images_and_tools(http):
    image = {"type": "input_image", "image_url": "https://example.com/cat.png"}
    status, _ = await error_body(
        http, {"model": "sim-mini", "input": [{"role": "user", "content": [image]}]}
    )
    tool_status, body = await error_body(
        http, {"model": "sim-mini", "input": "Hi", "tools": [{"type": "web_search"}]}
    )
    assert status == tool_status == 400
    assert body["error"]["param"] == "tools[0]"


async def test_tiny_max_output_tokens_is_rejected(http):
    status, body = await error_body(
        http, {"model": "sim-chat", "input": "Hi", "max_output_tokens": 5}
    )
    assert (status, body["error"]["code"]) == (400, "integer_below_min_value")


async def test_unknown_parameter_is_rejected(http):
    status, body = await error_body(http, {"model": "sim-chat", "input": "Hi", "temprature": 1})
    assert status == 400
    assert body["error"] == {
        "message": "Unknown parameter: 'temprature'.",
        "type": "invalid_request_error",
        "param": "temprature",
        "code": "unknown_parameter",
    }


async def test_function_output_for_an_unknown_call_is_rejected(http):
    item = {"type": "function_call_output", "call_id": "call_missing", "output": "42"}
    status, body = await error_body(http, {"model": "sim-chat", "input": [item]})
    assert status == 400
    assert "call_missing" in body["error"]["message"]


async def test_reasoning_budget_can_leave_no_room_for_the_answer(http):
    answer = await create(http, {"model": "sim-reasoner", "input": "Hi", "max_output_tokens": 20})
    assert answer["status"] == "incomplete"
    assert [item["type"] for item in answer["output"]] == ["reasoning"]
    assert answer["usage"]["output_tokens"] == 20


async def test_web_search_sources_only_when_included(http):
    body = {"model": "sim-chat", "input": "Search tea", "tools": [{"type": "web_search"}]}
    plain = await create(http, body)
    sourced = await create(http, {**body, "include": ["web_search_call.action.sources"]})
    assert "sources" not in plain["output"][0]["action"]
    assert [s["type"] for s in sourced["output"][0]["action"]["sources"]] == ["url", "url"]


async def test_missing_key_is_the_real_401(simulator_server):
    async with httpx.AsyncClient(base_url=simulator_server.base_url) as anonymous:
        response = await anonymous.post("/responses", json={"model": "sim-chat", "input": "Hi"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_wrong_key_is_the_real_401_with_the_key_masked(simulator_server):
    headers = {"Authorization": "Bearer sk-wrong-key-123456"}
    async with httpx.AsyncClient(base_url=simulator_server.base_url, headers=headers) as client:
        response = await client.post("/responses", json={"model": "sim-chat", "input": "Hi"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-key-123456" not in response.text and "3456" in response.text


async def test_unknown_url_is_the_real_404(http):
    response = await http.post("/completions", json={})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/completions)"


async def test_models_endpoint_lists_the_catalogue(http):
    listed = (await http.get("/models")).json()
    assert [model["id"] for model in listed["data"]] == [model.name for model in MODELS]


def test_catalogue_describes_capabilities():
    chat, reasoner, mini = (
        find_model("sim-chat"),
        find_model("sim-reasoner"),
        find_model("sim-mini"),
    )
    assert (chat.web_search, chat.images, chat.function_tools, chat.reasoning) == (
        True,
        True,
        True,
        False,
    )
    assert reasoner.reasoning_efforts == ("low", "medium", "high")
    assert reasoner.default_effort == "medium"
    assert (mini.web_search, mini.images, mini.function_tools) == (False, False, False)


async def test_abandoned_stream_stops_generating(http, simulator_server):
    body = {"model": "sim-chat", "input": "Hello", "stream": True}
    async with http.stream(
        "POST", "/responses", json=body, headers={"X-Simulator-Pace": "5"}
    ) as response:
        async for _ in response.aiter_bytes():
            break
        assert simulator_server.app.active_streams >= 1

    async def closed() -> bool:
        return simulator_server.app.active_streams == 0

    await wait_until_async(closed, what="the end of the closed stream")


@given(st.text())
def test_tokens_join_back_to_the_text(text):
    assert "".join(tokenize(text)) == text


def test_tokens_are_words_cjk_characters_and_punctuation():
    assert tokenize("Hello there!") == ["Hello", " there", "!"]
    assert tokenize("我叫Ming。") == ["我", "叫", "Ming", "。"]


def test_standalone_server_answers_and_logs_when_it_sent_each_token(tmp_path):
    emissions = tmp_path / "emissions.jsonl"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "conversations.gateway.simulator", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--pace", "0", "--emission-log", str(emissions)],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base_url}/models").raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the standalone simulator did not start"
                time.sleep(0.05)
        answer = httpx.post(f"{base_url}/responses", json={"model": "sim-mini", "input": "Hello"})
        assert answer.json()["output"][0]["content"][0]["text"].startswith("Hello!")

        body = {"model": "sim-mini", "input": "Hello", "stream": True}
        events = [
            json.loads(line.removeprefix("data: "))
            for line in httpx.post(f"{base_url}/responses", json=body).text.splitlines()
            if line.startswith("data: ")
        ]
    finally:
        server.terminate()
        server.wait(timeout=10)
    # Benchmarks measure lag from this log: one line per stream, a time per text delta.
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    [logged] = [json.loads(line) for line in emissions.read_text().splitlines()]
    assert logged["id"] == events[0]["response"]["id"]
    assert len(logged["text_sent_at"]) == len(deltas) > 1
    assert logged["started"] <= logged["text_sent_at"][0]
    assert logged["text_sent_at"] == sorted(logged["text_sent_at"])
