"""ResponsesClient against the simulator over real HTTP: every event kind, typed results."""

from __future__ import annotations

import json

import httpx
import pytest

from conversations.gateway.client import ResponsesClient
from conversations.gateway.errors import AuthenticationError, NoModelListError, NotFoundError
from conversations.gateway.events import (
    ContentPartAdded,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItemAdded,
    OutputTextAnnotationAdded,
    OutputTextDelta,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    RefusalDelta,
    ResponseCompleted,
    ResponseIncomplete,
)
from conversations.gateway.request import (
    Reasoning,
    ResponseRequest,
    WebSearchTool,
    function_call_output,
    replay_output,
    user_message,
)
from conversations.gateway.response import (
    FunctionCallItem,
    MessageItem,
    ReasoningItem,
    UrlCitation,
    WebSearchCallItem,
)
from conversations.gateway.simulator.catalogue import MODELS
from tests.gateway.helpers import (
    CALCULATOR_TOOL,
    TIME_TOOL,
    collect,
    event_types,
    make_client,
    streamed_text,
)
from tests.support.simulator import RequestLog

PLAIN_ORDER_START = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
]
PLAIN_ORDER_END = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


async def test_stream_plain_answer_follows_reference_event_order(gateway_client):
    events = await collect(gateway_client, ResponseRequest(model="sim-chat", input="Hello there"))
    types = event_types(events)
    assert types[:5] == PLAIN_ORDER_START
    assert types[-4:] == PLAIN_ORDER_END
    assert set(types[4:-4]) == {"response.output_text.delta"}


async def test_stream_sequence_numbers_count_from_zero(gateway_client):
    events = await collect(gateway_client, ResponseRequest(model="sim-chat", input="Hello"))
    assert [event.sequence_number for event in events] == list(range(len(events)))


async def test_stream_final_text_equals_joined_deltas(gateway_client):
    events = await collect(
        gateway_client, ResponseRequest(model="sim-chat", input="Tell me about tea.")
    )
    final = events[-1]
    assert isinstance(final, ResponseCompleted)
    assert final.response.output_text == streamed_text(events)
    assert final.response.status == "completed"


async def test_stream_usage_counts_one_output_token_per_delta(gateway_client):
    events = await collect(
        gateway_client, ResponseRequest(model="sim-chat", input="Tell me about tea.")
    )
    usage = events[-1].response.usage
    deltas = [event for event in events if isinstance(event, OutputTextDelta)]
    assert usage.output_tokens == len(deltas)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


async def test_stream_reasoning_summary_events_come_before_the_answer(gateway_client):
    request = ResponseRequest(
        model="sim-reasoner", input="Why is the sky blue?", reasoning=Reasoning("high", "detailed")
    )
    events = await collect(gateway_client, request)
    types = event_types(events)
    assert types[2:5] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
    ]
    assert types.count("response.reasoning_summary_part.done") == 3
    assert types.index("response.reasoning_summary_text.done") < types.index(
        "response.output_text.delta"
    )


async def test_stream_reasoning_item_holds_summary_and_counts_reasoning_tokens(gateway_client):
    request = ResponseRequest(
        model="sim-reasoner", input="Why is the sky blue?", reasoning=Reasoning("medium", "auto")
    )
    events = await collect(gateway_client, request)
    response = events[-1].response
    reasoning, message = response.output
    summary_deltas = "".join(e.delta for e in events if isinstance(e, ReasoningSummaryTextDelta))
    assert isinstance(reasoning, ReasoningItem) and isinstance(message, MessageItem)
    assert "".join(reasoning.summary) == summary_deltas
    assert response.usage.reasoning_tokens > 0
    assert response.usage.output_tokens == response.usage.reasoning_tokens + len(
        [e for e in events if isinstance(e, OutputTextDelta)]
    )


async def test_stream_reasoning_without_summary_setting_has_empty_summary(gateway_client):
    events = await collect(gateway_client, ResponseRequest(model="sim-reasoner", input="Hi"))
    assert "response.reasoning_summary_part.added" not in event_types(events)
    assert events[-1].response.output[0].summary == ()


async def test_stream_reasoning_encrypted_content_only_when_included(gateway_client):
    plain = await collect(gateway_client, ResponseRequest(model="sim-reasoner", input="Hi"))
    included = await collect(
        gateway_client,
        ResponseRequest(
            model="sim-reasoner", input="Hi", include=["reasoning.encrypted_content"], store=False
        ),
    )
    assert plain[-1].response.output[0].encrypted_content is None
    assert included[-1].response.output[0].encrypted_content.startswith("gAAAAA")


async def test_stream_raw_reasoning_text_events(gateway_client):
    events = await collect(
        gateway_client, ResponseRequest(model="sim-oss", input="Why is ice slippery?")
    )
    types = event_types(events)
    raw = "".join(event.delta for event in events if isinstance(event, ReasoningTextDelta))
    assert "response.reasoning_text.done" in types
    assert events[-1].response.output[0].content == (raw,)
    assert events[-1].response.usage.reasoning_tokens == types.count(
        "response.reasoning_text.delta"
    )


async def test_stream_web_search_events_in_order(gateway_client):
    request = ResponseRequest(
        model="sim-chat", input="Search the latest Django release", tools=[WebSearchTool()]
    )
    types = event_types(await collect(gateway_client, request))
    assert types[2:7] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]


async def test_stream_web_search_query_and_citations(gateway_client):
    request = ResponseRequest(
        model="sim-chat",
        input="Search the latest Django release",
        tools=[WebSearchTool(preview=True)],
    )
    events = await collect(gateway_client, request)
    search, message = events[-1].response.output
    added = [e.annotation for e in events if isinstance(e, OutputTextAnnotationAdded)]
    assert isinstance(search, WebSearchCallItem) and search.query == "the latest Django release"
    assert added == list(message.citations) and len(added) == 2
    for citation in message.citations:
        assert isinstance(citation, UrlCitation)
        assert citation.url in message.text[citation.start_index : citation.end_index]


async def test_stream_function_call_events_and_typed_item(gateway_client):
    request = ResponseRequest(
        model="sim-chat", input="What time is it in Tokyo?", tools=[TIME_TOOL]
    )
    events = await collect(gateway_client, request)
    done = next(e for e in events if isinstance(e, FunctionCallArgumentsDone))
    deltas = "".join(e.delta for e in events if isinstance(e, FunctionCallArgumentsDelta))
    (call,) = events[-1].response.function_calls
    assert isinstance(events[2], OutputItemAdded) and isinstance(events[2].item, FunctionCallItem)
    assert done.arguments == deltas == call.arguments and done.name == "get_current_time"
    assert json.loads(call.arguments) == {"timezone": "Asia/Tokyo"}
    assert call.call_id.startswith("call_") and call.id.startswith("fc_")


async def test_function_call_round_trip_via_previous_response_id(gateway_client):
    first = await gateway_client.create(
        ResponseRequest(model="sim-chat", input="What is 12*7?", tools=[CALCULATOR_TOOL])
    )
    (call,) = first.function_calls
    assert json.loads(call.arguments) == {"expression": "12*7"}
    answer = await gateway_client.create(
        ResponseRequest(
            model="sim-chat",
            previous_response_id=first.id,
            input=[function_call_output(call.call_id, '{"result": 84}')],
            tools=[CALCULATOR_TOOL],
        )
    )
    assert "84" in answer.output_text


async def test_function_call_round_trip_via_full_replay(gateway_client):
    question = user_message("What time is it in Paris?")
    first = await gateway_client.create(
        ResponseRequest(
            model="sim-reasoner",
            input=[question],
            tools=[TIME_TOOL],
            store=False,
            include=["reasoning.encrypted_content"],
        )
    )
    (call,) = first.function_calls
    replay = [question, *replay_output(first.output), function_call_output(call.call_id, "09:30")]
    answer = await gateway_client.create(
        ResponseRequest(model="sim-reasoner", input=replay, tools=[TIME_TOOL], store=False)
    )
    assert "09:30" in answer.output_text
    assert [item["type"] for item in replay] == [
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
    ]


async def test_stream_refusal_events(gateway_client):
    events = await collect(
        gateway_client, ResponseRequest(model="sim-chat", input="Please refuse this.")
    )
    refusal = "".join(e.delta for e in events if isinstance(e, RefusalDelta))
    part = next(e for e in events if isinstance(e, ContentPartAdded)).part
    message = events[-1].response.output[0]
    assert "response.refusal.done" in event_types(events)
    assert refusal == message.refusal == "I'm sorry, but I can't help with that."
    assert type(part).__name__ == "Refusal" and message.text == ""


async def test_stream_small_max_output_tokens_ends_incomplete(gateway_client):
    request = ResponseRequest(
        model="sim-chat", input="Write python code to sort a list", max_output_tokens=16
    )
    events = await collect(gateway_client, request)
    final = events[-1]
    assert isinstance(final, ResponseIncomplete)
    assert final.response.incomplete_reason == "max_output_tokens"
    assert final.response.usage.output_tokens == 16
    assert len([e for e in events if isinstance(e, OutputTextDelta)]) == 16


async def test_create_returns_typed_response(gateway_client):
    response = await gateway_client.create(ResponseRequest(model="sim-mini", input="Hello"))
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.model == "sim-mini-2025-04-14"
    assert response.output_text.startswith("Hello!")
    assert isinstance(response.created_at, float)


async def test_retrieve_returns_the_stored_response(gateway_client):
    created = await gateway_client.create(ResponseRequest(model="sim-mini", input="Hello"))
    retrieved = await gateway_client.retrieve(created.id)
    assert retrieved == created


async def test_delete_forgets_the_response(gateway_client):
    created = await gateway_client.create(ResponseRequest(model="sim-mini", input="Hello"))
    await gateway_client.delete(created.id)
    try:
        await gateway_client.retrieve(created.id)
    except NotFoundError as error:
        assert error.status_code == 404
    else:
        raise AssertionError("a deleted response was still retrievable")


async def test_cancel_stops_a_background_response(gateway_client, simulator_server):
    request = ResponseRequest(model="sim-chat", input="Tell me a long story", background=True)
    queued = await gateway_client.create(request, headers={"X-Simulator-Pace": "1"})
    cancelled = await gateway_client.cancel(queued.id)
    assert queued.status == "queued"
    assert cancelled.status == "cancelled"
    assert (await gateway_client.retrieve(queued.id)).status == "cancelled"


async def test_count_input_tokens_matches_billed_input(gateway_client):
    request = ResponseRequest(
        model="sim-chat", input="How many tokens is this?", instructions="Be brief."
    )
    counted = await gateway_client.count_input_tokens(request)
    response = await gateway_client.create(request)
    assert counted == response.usage.input_tokens == 9


async def test_stream_sends_key_only_in_authorization_and_no_stream_options(
    gateway_client, simulator_server
):
    log = RequestLog(simulator_server.app)
    await collect(
        gateway_client, ResponseRequest(model="sim-mini", input="Hi"), headers={"X-Trace": "t1"}
    )
    [record] = [r for r in log.all() if r.headers.get("x-trace") == "t1"]
    assert "authorization" not in record.headers  # the simulator never records it
    assert record.body["stream"] is True
    assert "stream_options" not in record.body  # relays may refuse it; opt-in per gateway
    assert simulator_server.api_key not in json.dumps(record.body)


async def test_streams_reuse_one_pooled_connection(gateway_client, simulator_server):
    log = RequestLog(simulator_server.app)
    for turn in ("one", "two", "three"):
        await collect(
            gateway_client,
            ResponseRequest(model="sim-mini", input=turn),
            headers={"X-Trace": "keep-alive"},
        )
    records = [r for r in log.all() if r.headers.get("x-trace") == "keep-alive"]
    assert len(records) == 3
    assert len({record.client for record in records}) == 1


# The model list.


async def test_list_models_returns_the_simulator_catalogue_in_order(gateway_client):
    assert await gateway_client.list_models() == [model.name for model in MODELS]


def fixed_gateway(status: int, content: bytes, content_type: str = "application/json"):
    """Return a transport answering every request with one fixed reply."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models" and request.method == "GET"
        return httpx.Response(status, headers={"content-type": content_type}, content=content)

    return httpx.MockTransport(handler)


async def list_from(status: int, payload: object, content_type: str = "application/json"):
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    transport = fixed_gateway(status, content, content_type)
    async with ResponsesClient("https://gateway.test/v1", "k", transport=transport) as client:
        return await client.list_models()


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "list", "data": [{"id": "b", "object": "model"}, {"id": "a"}]},
        {"data": [{"id": "b"}, {"id": "a"}, {"id": "b"}]},
        [{"id": "b"}, "a"],
        {"data": [{"id": "b"}, {"id": ""}, {"id": "x\x00"}, {"id": 7}, {"name": "n"}, {"id": "a"}]},
    ],
)
async def test_list_models_tolerates_list_shapes_and_skips_bad_ids(payload):
    assert await list_from(200, payload) == ["b", "a"]


async def test_list_models_keeps_long_ids():
    long_id = "azure/" + "d" * 600
    assert await list_from(200, {"data": [{"id": long_id}]}) == [long_id]


@pytest.mark.parametrize(
    ("status", "payload", "content_type"),
    [
        (
            404,
            {"error": {"message": "Invalid URL (GET /v1/models)", "code": ""}},
            "application/json",
        ),
        (200, b"<html><body>Welcome to the relay</body></html>", "text/html"),
        (200, {"object": "list", "data": "none"}, "application/json"),
    ],
)
async def test_gateway_without_a_model_list_says_so(status, payload, content_type):
    with pytest.raises(NoModelListError) as caught:
        await list_from(status, payload, content_type)
    assert caught.value.user_message == "The model service does not publish a list of its models."


async def test_list_models_with_a_wrong_key_is_an_authentication_error(simulator_server):
    async with make_client(simulator_server, api_key="gw-wrong-key-123456") as client:
        with pytest.raises(AuthenticationError):
            await client.list_models()
