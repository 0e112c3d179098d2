"""Reasoning, web search and function calls, through a whole turn against the simulator."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Message, UsageRecord
from tests.support.chat import final_answer, open_socket, receive_until, send, visible_text
from tests.support.turns import ask, model_id, reload

pytestmark = pytest.mark.django_db(transaction=True)


async def test_reasoning_summary_is_saved_with_effort_and_tokens(gateway, user):
    _, message = await ask(
        user, "Why is the sky blue?", model="sim-reasoner", effort="high", summary="auto"
    )

    [sent] = gateway.requests.streamed()
    assert sent["reasoning"] == {"effort": "high", "summary": "auto"}
    assert message.reasoning_summary
    assert message.reasoning_effort == "high"
    assert message.reasoning_tokens > 0


async def test_unknown_effort_falls_back_to_the_models_default(gateway, user):
    _, message = await ask(user, "Hi", model="sim-reasoner", effort="extreme")

    assert message.reasoning_effort == "medium"
    [sent] = gateway.requests.streamed()
    assert sent["reasoning"] == {"effort": "medium"}


async def test_non_reasoning_model_never_sends_reasoning(gateway, user):
    await ask(user, "Hi", model="sim-chat", effort="high", summary="auto")

    [sent] = gateway.requests.streamed()
    assert "reasoning" not in sent


async def test_web_search_saves_query_and_sanitised_citations(gateway, user):
    _, message = await ask(user, "Look up Django Channels", web_search=True)

    [sent] = gateway.requests.streamed()
    assert {"type": "web_search"} in sent["tools"]
    assert message.web_searches[0]["query"]
    assert message.citations
    assert all(c["url"].startswith(("http://", "https://")) for c in message.citations)


async def test_web_search_is_not_sent_unless_asked(gateway, user):
    await ask(user, "Look up Django Channels")

    [sent] = gateway.requests.streamed()
    assert {"type": "web_search"} not in sent.get("tools", [])


async def test_function_call_round_trip_runs_the_tool_and_answers(gateway, user):
    _, message = await ask(user, "What is 12*7?")

    call = message.tool_calls[0]
    assert call["name"] == "calculate"
    assert call["ok"]
    assert "84" in call["output"]
    assert "84" in message.text
    _, followup = gateway.requests.streamed()
    assert followup["previous_response_id"]
    assert followup["input"][0]["type"] == "function_call_output"
    purposes = await sync_to_async(list)(
        UsageRecord.objects.filter(message=message).values_list("purpose", flat=True)
    )
    assert sorted(purposes) == ["answer", "tool_round"]


async def test_bad_tool_arguments_go_back_to_the_model_as_an_error(gateway, user):
    _, message = await ask(user, "What is 5/0?")

    call = message.tool_calls[0]
    assert call["name"] == "calculate"
    assert not call["ok"]
    assert "error" in call["output"]
    assert message.status == "complete"


async def test_tool_turn_without_storage_replays_the_call_and_its_output(gateway, user, replaying):

    _, message = await ask(user, "What is 12*7?")

    _, followup = gateway.requests.streamed()
    types = [item.get("type") for item in followup["input"]]
    assert "previous_response_id" not in followup
    assert types[-2:] == ["function_call", "function_call_output"]
    assert "84" in message.text


async def test_forgotten_chain_after_a_tool_turn_replays_history(gateway, user):
    first, _ = await ask(user, "What is 12*7?")
    await sync_to_async(Message.objects.filter(role="assistant").update)(response_id="resp_gone")

    _, second = await ask(user, "Thanks! And 6*7?", conversation_id=first.conversation.pk)

    assert second.status == "complete"
    assert second.previous_response_id == ""
    assert "42" in second.text


async def test_bubble_shows_thinking_live_and_collapsed_at_rest(gateway, user):
    socket = await open_socket(user)
    reasoner = await model_id("sim-reasoner")

    await send(
        socket, action="send", conversation="", text="Why?", model=str(reasoner), summary="auto"
    )
    frames = await receive_until(socket, final_answer)

    assert any("Thinking…" in frame for frame in frames[:-1])
    assert "Thought process" in frames[-1]
    assert '<details class="thinking" open' not in frames[-1]
    await socket.disconnect()


async def test_bubble_shows_search_progress_and_numbered_sources(gateway, user):
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Look up htmx", web_search="on")
    frames = await receive_until(socket, final_answer)

    # A fast stream may coalesce "Searching…" into "Searched…"; a live step is always sent.
    assert any("search-step" in frame for frame in frames[:-1])
    final = frames[-1]
    assert "Sources" in final
    assert "[1]" in visible_text(final)
    assert 'rel="noopener noreferrer"' in final
    await socket.disconnect()


async def test_bubble_shows_tool_steps_with_arguments_and_result(gateway, user):
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="What is 12*7?")
    frames = await receive_until(socket, final_answer)

    assert "Used <code>calculate</code>" in frames[-1]
    assert "84" in visible_text(frames[-1])
    message = await reload(int(frames[-1].split('id="message-')[1].split('"')[0]))
    assert message.tool_calls
    await socket.disconnect()
