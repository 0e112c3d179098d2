"""Whole turns through LiteLLM's proxy (a real third-party gateway) to a chat backend.

LiteLLM bridges the Responses API to Chat Completions, ignores `previous_response_id`
without its database, returns ~430-character ids and sends error codes as strings
(tests/gateways/test_litellm_protocol.py measures all of it). These tests drive the app
as a user does and check what reached the backend: the context is kept, answers are
saved whole with their usage, a refused option is dropped and said, and failures say
what went wrong.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Message, ModelChoice, UsageRecord
from conversations.pipeline import turns
from conversations.pipeline.plans import TurnOptions
from conversations.tools import all_tools
from tests.support.litellm import TEST_TIMEOUT
from tests.support.turns import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(TEST_TIMEOUT)]


@pytest.fixture
def via_litellm(litellm_gateway, settings, transactional_db):
    """Point the app at the LiteLLM proxy, with its models in the catalogue."""
    settings.OPENAI_API_KEY = litellm_gateway.api_key
    settings.OPENAI_BASE_URL = litellm_gateway.base_url
    settings.GATEWAY_MAX_RETRIES = 0
    settings.GATEWAY_OPENAI_OPTIONS = None  # judged from the host: not OpenAI
    reasoning = {
        "supports_reasoning": True,
        "reasoning_efforts": "low,medium,high",
        "default_reasoning_effort": "medium",
    }
    ModelChoice.objects.create(
        upstream_id=litellm_gateway.chat_model,
        label="Bridged Chat",
        is_default=True,
        supports_web_search=True,
        supports_function_tools=True,
        tools=[tool.name for tool in all_tools()],
    )
    ModelChoice.objects.create(
        upstream_id=litellm_gateway.reasoning_model, label="Bridged Reasoner", **reasoning
    )
    ModelChoice.objects.create(
        upstream_id=litellm_gateway.lenient_reasoning_model, label="Lenient", **reasoning
    )
    ModelChoice.objects.create(upstream_id=litellm_gateway.dead_model, label="Dead")
    ModelChoice.objects.create(upstream_id="not-on-the-gateway", label="Ghost")
    return litellm_gateway


@sync_to_async
def entry(upstream_id: str) -> ModelChoice:
    return ModelChoice.objects.get(upstream_id=upstream_id)


async def answer(user, text, *, model, conversation_id=None, **options):
    result = await turns.send(
        user=user,
        conversation_id=conversation_id,
        text=text,
        model_id=(await entry(model)).pk,
        options=TurnOptions(**options),
    )
    return result, await finished(result.plan.answer_id, timeout=30)


def answer_requests(gateway) -> list[dict]:
    """Return the streamed chat requests that reached the backend (titles are not streamed)."""
    return [request for request in gateway.backend_requests() if request.get("stream")]


def chat_messages(request: dict) -> list[tuple[str, str]]:
    """Return (role, text) of each message a chat-completions request carried."""
    pairs = []
    for message in request["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        pairs.append((message["role"], content or ""))
    return pairs


async def test_two_turns_keep_the_context_and_are_saved_whole(via_litellm, user):
    model = via_litellm.chat_model
    first, first_answer = await answer(user, "My name is Ming.", model=model)
    before = len(answer_requests(via_litellm))

    _, second = await answer(
        user, "What is my name?", model=model, conversation_id=first.conversation.pk
    )

    reached = answer_requests(via_litellm)[before:]
    # LiteLLM asks the backend before it answers `response.created`, which shows it
    # dropped the chain: that request is cancelled before any of its text is shown, and
    # the question goes again with the conversation.
    assert len(reached) == 2
    assert chat_messages(reached[0]) == [("user", "What is my name?")]
    assert chat_messages(reached[1]) == [
        ("user", "My name is Ming."),
        ("assistant", first_answer.text),
        ("user", "What is my name?"),
    ]
    for message in (first_answer, second):
        assert message.status == Message.Status.COMPLETE
        assert len(message.response_id) > 400
        assert message.output_tokens > 0
    assert "Ming" in second.text
    assert second.notes == []
    learned = await entry(model)
    assert learned.stateless_detected_at is not None
    records = await sync_to_async(list)(
        UsageRecord.objects.filter(user=user, purpose="answer").values_list(
            "estimated", "total_tokens"
        )
    )
    assert len(records) >= 2
    assert all(not estimated and total > 0 for estimated, total in records)


async def test_a_tool_turn_replays_the_call_and_its_output_in_order(via_litellm, user):
    _, message = await answer(user, "What is 12*7?", model=via_litellm.chat_model)

    assert message.status == Message.Status.COMPLETE
    assert "84" in message.text
    final = answer_requests(via_litellm)[-1]
    roles = [m["role"] for m in final["messages"]]
    assert roles == ["user", "assistant", "tool"]
    assert final["messages"][1]["tool_calls"][0]["id"] == final["messages"][2]["tool_call_id"]


async def test_a_refused_reasoning_option_is_dropped_and_said(via_litellm, user):
    model = via_litellm.reasoning_model

    _, message = await answer(user, "Why is the sky blue?", model=model, effort="high")

    assert message.status == Message.Status.COMPLETE
    assert message.text
    assert message.reasoning_effort == ""
    assert message.notes == [{"code": "without_param", "param": "reasoning"}]
    rejected = (await entry(model)).unsupported_params
    assert "reasoning_effort" in rejected["reasoning"]["message"]


async def test_an_unknown_model_says_so(via_litellm, user):
    _, message = await answer(user, "Hello", model="not-on-the-gateway")

    assert message.status == Message.Status.FAILED
    assert message.error_code == "model_not_found"
    assert "not known" in message.error
    assert "Invalid model name" in message.error_detail
    assert (await entry("not-on-the-gateway")).unknown_to_gateway_at is not None


async def test_a_dead_backend_shows_unavailable(via_litellm, user):
    _, message = await answer(user, "Hello", model=via_litellm.dead_model)

    assert message.status == Message.Status.FAILED
    assert message.error_code == "unavailable"
    assert "unavailable" in message.error
    assert message.error_detail


async def test_web_search_the_gateway_does_not_run_is_said(via_litellm, user):
    _, message = await answer(
        user, "Search the web for Django news", model=via_litellm.chat_model, web_search=True
    )

    assert message.status == Message.Status.COMPLETE
    assert message.notes == [{"code": "no_web_search"}]
