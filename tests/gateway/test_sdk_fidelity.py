"""The official openai SDK against the simulator: every event must parse into its typed model.

If the simulator drifted from the real protocol (a missing required field, a wrong event
name, an inconsistent stream), the SDK's typed models or its stream accumulator would
notice, so this is the check that the simulator speaks the real thing.
"""

from __future__ import annotations

import base64
from typing import Any, get_args

import openai
import pytest
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseFunctionWebSearch,
    ResponseOutputMessage,
    ResponseReasoningItem,
    ResponseStreamEvent,
)

from tests.gateway.helpers import CALCULATOR_TOOL, TIME_TOOL, image_bytes

SDK_EVENT_CLASSES = {
    get_args(variant.model_fields["type"].annotation)[0]: variant
    for variant in get_args(get_args(ResponseStreamEvent)[0])
}


@pytest.fixture
async def sdk(simulator_server):
    client = openai.AsyncOpenAI(
        base_url=simulator_server.base_url, api_key=simulator_server.api_key, max_retries=0
    )
    yield client
    await client.close()


async def sdk_stream(sdk: openai.AsyncOpenAI, **params: Any) -> list[Any]:
    """Return every event of a streamed response, each checked against the SDK's models."""
    stream = await sdk.responses.create(stream=True, **params)
    events = [event async for event in stream]
    for event in events:
        expected = SDK_EVENT_CLASSES[event.type]
        assert type(event) is expected, event.type
        expected.model_validate(event.to_dict())  # every required field present and well typed
    return events


def types_of(events: list[Any]) -> set[str]:
    return {event.type for event in events}


async def test_sdk_parses_a_plain_text_stream(sdk):
    events = await sdk_stream(sdk, model="sim-chat", input="Hello there")
    final = events[-1].response
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.output_text == deltas and final.usage.output_tokens > 0
    assert isinstance(final.output[0], ResponseOutputMessage)


async def test_sdk_parses_reasoning_with_summaries(sdk):
    events = await sdk_stream(
        sdk,
        model="sim-reasoner",
        input="Why is the sea salty?",
        reasoning={"effort": "high", "summary": "detailed"},
        include=["reasoning.encrypted_content"],
    )
    reasoning = events[-1].response.output[0]
    assert {
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    } <= types_of(events)
    assert isinstance(reasoning, ResponseReasoningItem) and len(reasoning.summary) == 3
    assert reasoning.encrypted_content.startswith("gAAAAA")


async def test_sdk_parses_raw_reasoning_text(sdk):
    events = await sdk_stream(sdk, model="sim-oss", input="Why is the sea salty?")
    assert {"response.reasoning_text.delta", "response.reasoning_text.done"} <= types_of(events)


async def test_sdk_parses_web_search_with_citations(sdk):
    events = await sdk_stream(
        sdk, model="sim-chat", input="Search for tide tables", tools=[{"type": "web_search"}]
    )
    search, message = events[-1].response.output
    annotations = message.content[0].annotations
    assert isinstance(search, ResponseFunctionWebSearch) and search.action.query == "tide tables"
    assert [annotation.type for annotation in annotations] == ["url_citation", "url_citation"]
    assert "response.output_text.annotation.added" in types_of(events)
    assert "response.web_search_call.searching" in types_of(events)


async def test_sdk_function_call_round_trip(sdk):
    tools = [CALCULATOR_TOOL.to_dict()]
    events = await sdk_stream(sdk, model="sim-chat", input="What is 6*7?", tools=tools)
    call = events[-1].response.output[0]
    assert isinstance(call, ResponseFunctionToolCall) and call.arguments == '{"expression": "6*7"}'
    answer = await sdk_stream(
        sdk,
        model="sim-chat",
        tools=tools,
        previous_response_id=events[-1].response.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "42"}],
    )
    assert answer[-1].response.output_text == "6*7 = 42."


async def test_sdk_image_input(sdk):
    data = image_bytes("PNG", 3, 2)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    content = [
        {"type": "input_text", "text": "Describe"},
        {"type": "input_image", "image_url": url, "detail": "auto"},
    ]
    events = await sdk_stream(sdk, model="sim-chat", input=[{"role": "user", "content": content}])
    assert "PNG, 3\u00d72 pixels" in events[-1].response.output_text


async def test_sdk_refusal(sdk):
    events = await sdk_stream(sdk, model="sim-chat", input="I want you to refuse.")
    assert {"response.refusal.delta", "response.refusal.done"} <= types_of(events)


async def test_sdk_continues_with_previous_response_id(sdk):
    first = await sdk.responses.create(model="sim-chat", input="My name is Ming.")
    events = await sdk_stream(
        sdk, model="sim-chat", input="What is my name?", previous_response_id=first.id
    )
    assert events[-1].response.output_text == "Your name is Ming."


@pytest.mark.parametrize(
    "params",
    [
        {
            "model": "sim-reasoner",
            "input": "Search tea",
            "tools": [{"type": "web_search"}],
            "reasoning": {"summary": "auto"},
        },
        {"model": "sim-chat", "input": "What time is it?", "tools": [TIME_TOOL.to_dict()]},
        {"model": "sim-chat", "input": "Please refuse."},
        {"model": "sim-chat", "input": "Write python code", "max_output_tokens": 20},
    ],
    ids=["reasoning-search", "function-call", "refusal", "incomplete"],
)
async def test_sdk_stream_accumulator_accepts_the_whole_stream(sdk, params):
    async with sdk.responses.stream(**params) as stream:
        async for _ in stream:
            pass
        if params.get("max_output_tokens"):
            return  # the accumulator only builds a final response for completed streams
        final = await stream.get_final_response()
    assert final.status == "completed"


async def test_sdk_stored_response_endpoints(sdk):
    created = await sdk.responses.create(model="sim-mini", input="Hello")
    retrieved = await sdk.responses.retrieve(created.id)
    counted = await sdk.responses.input_tokens.count(model="sim-mini", input="Hello")
    await sdk.responses.delete(created.id)
    assert retrieved.output_text == created.output_text
    assert counted.input_tokens == created.usage.input_tokens
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(created.id)


async def test_sdk_cancels_a_background_response(sdk):
    queued = await sdk.responses.create(
        model="sim-chat",
        input="A long story",
        background=True,
        extra_headers={"X-Simulator-Pace": "1"},
    )
    cancelled = await sdk.responses.cancel(queued.id)
    assert (queued.status, cancelled.status) == ("queued", "cancelled")


async def test_sdk_maps_previous_response_not_found(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="sim-chat", input="Hi", previous_response_id="resp_gone")
    assert caught.value.code == "previous_response_not_found"


async def test_sdk_maps_rate_limit_fault(sdk):
    with pytest.raises(openai.RateLimitError):
        await sdk.responses.create(model="sim-chat+fault=429", input="Hi")


async def test_sdk_raises_on_the_nested_error_event(sdk):
    stream = await sdk.responses.create(model="sim-chat+fault=error", input="Hi", stream=True)
    with pytest.raises(openai.APIError, match="Too Many Requests"):
        async for _ in stream:
            pass


async def test_sdk_yields_the_flat_error_event(sdk):
    events = await sdk_stream(sdk, model="sim-chat+fault=error-flat", input="Hi")
    assert events[-1].type == "error" and events[-1].code == "server_error"
