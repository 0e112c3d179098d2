"""The chat websocket end to end: real ASGI stack, real database, simulator over HTTP."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chatweb.asgi import application
from conversations.models import Conversation, Message
from conversations.rendering.markdown import render_markdown
from tests.support.chat import (
    LiveBubble,
    final_answer,
    open_socket,
    receive_until,
    send,
    streamed_text,
    visible_text,
)

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = "sim-chat+fault=slow:40"


@sync_to_async
def answers(conversation_id=None):
    found = Message.objects.filter(role="assistant").order_by("pk")
    if conversation_id is not None:
        found = found.filter(conversation_id=conversation_id)
    return list(found)


@sync_to_async
def use_model(upstream_id: str) -> int:
    """Add a catalogue entry for a simulator model with faults, and return its id."""
    from conversations.models import ModelChoice

    choice, _ = ModelChoice.objects.get_or_create(
        upstream_id=upstream_id, defaults={"label": upstream_id}
    )
    return choice.pk


def answer_id(frames: list[str]) -> int:
    for frame in frames:
        found = re.search(r'<article id="message-(\d+)" class="message message-assistant', frame)
        if found:
            return int(found.group(1))
    raise AssertionError("no answer bubble in frames")


async def chat_turn(socket, text: str, conversation: int | str = "", **extra) -> list[str]:
    await send(socket, action="send", conversation=str(conversation), text=text, **extra)
    return await receive_until(socket, final_answer)


async def test_send_streams_answer_and_saves_both_messages(gateway, user):
    socket = await open_socket(user)

    frames = await chat_turn(socket, "Hello there")

    assert any("Hello there" in frame and "message-user" in frame for frame in frames)
    assert any("stream-tail" in frame for frame in frames[:-1])  # streamed, not all at once
    answer = (await answers())[0]
    assert answer.status == "complete"
    assert answer.response_id.startswith("resp_")
    assert answer.text and visible_text(answer.text)[:20] in visible_text(frames[-1])
    await socket.disconnect()


async def test_second_turn_continues_with_previous_response_id(gateway, user):
    socket = await open_socket(user)
    await chat_turn(socket, "My name is Ming.")
    first = (await answers())[0]

    frames = await chat_turn(socket, "What is my name?", conversation=first.conversation_id)

    second = (await answers())[1]
    assert second.previous_response_id == first.response_id
    assert "Ming" in second.text
    assert "Ming" in visible_text(frames[-1])
    await socket.disconnect()


async def test_forgotten_previous_response_replays_history_silently(gateway, user):
    socket = await open_socket(user)
    await chat_turn(socket, "My name is Ming.")
    first = (await answers())[0]
    await sync_to_async(Message.objects.filter(pk=first.pk).update)(response_id="resp_expired")

    frames = await chat_turn(socket, "What is my name?", conversation=first.conversation_id)

    second = (await answers())[1]
    assert second.status == "complete"
    assert second.previous_response_id == ""
    assert "Ming" in second.text
    assert "message-error" not in frames[-1]
    await socket.disconnect()


async def test_stop_keeps_partial_answer_marked_stopped(gateway, user):
    model = await use_model(SLOW)
    socket = await open_socket(user)
    await send(socket, action="send", conversation="", text="Tell me a story", model=str(model))
    frames = await receive_until(socket, streamed_text)
    pk = answer_id(frames)

    await send(socket, action="stop", message=str(pk))
    frames = await receive_until(socket, final_answer)

    answer = await sync_to_async(Message.objects.get)(pk=pk)
    assert answer.status == "cancelled"
    assert answer.text
    assert "status-cancelled" in frames[-1]
    assert "stopped" in frames[-1]
    await socket.disconnect()


async def test_closing_the_socket_does_not_stop_the_answer(gateway, user):
    model = await use_model("sim-chat+fault=slow:200")
    socket = await open_socket(user)
    await send(socket, action="send", conversation="", text="Hello", model=str(model))
    frames = await receive_until(socket, streamed_text)
    pk = answer_id(frames)
    await socket.disconnect()

    watcher = await open_socket(user)
    conversation = (await answers())[0].conversation_id
    await send(watcher, action="watch", conversation=str(conversation))
    await receive_until(watcher, final_answer)

    answer = await sync_to_async(Message.objects.get)(pk=pk)
    assert answer.status == "complete"
    await watcher.disconnect()


async def test_reconnect_mid_stream_shows_no_gap_or_duplicate(gateway, user):
    model = await use_model(SLOW)
    first = await open_socket(user)
    await send(first, action="send", conversation="", text="Tell me a story", model=str(model))
    frames = await receive_until(first, streamed_text)
    pk = answer_id(frames)
    conversation = (await answers())[0].conversation_id
    await first.disconnect()

    second = await open_socket(user)
    await send(second, action="watch", conversation=str(conversation))
    frames = await receive_until(second, final_answer)

    bubble = LiveBubble(pk)
    for frame in frames[:-1]:
        bubble.apply(frame)
    answer = await sync_to_async(Message.objects.get)(pk=pk)
    assert bubble.text == visible_text(render_markdown(answer.text))
    await second.disconnect()


async def test_two_sockets_on_one_conversation_both_stream(gateway, user):
    first = await open_socket(user)
    await chat_turn(first, "My name is Ming.")
    conversation = (await answers())[0].conversation_id
    second = await open_socket(user)
    await send(second, action="watch", conversation=str(conversation))
    await receive_until(second, lambda f: 'id="messages"' in f)

    model = await use_model(SLOW)
    await send(
        first,
        action="send",
        conversation=str(conversation),
        text="What is my name?",
        model=str(model),
    )
    first_frames = await receive_until(first, final_answer)
    second_frames = await receive_until(second, final_answer)

    assert "Ming" in visible_text(first_frames[-1])
    assert any(streamed_text(frame) for frame in second_frames[:-1])
    assert "Ming" in visible_text(second_frames[-1])
    assert any("What is my name?" in frame for frame in second_frames)
    await first.disconnect()
    await second.disconnect()


async def test_watching_another_users_conversation_is_refused(gateway, user, other_user):
    owner = await open_socket(other_user)
    await chat_turn(owner, "A secret plan")
    conversation = (await answers())[0].conversation_id
    intruder = await open_socket(user)

    await send(intruder, action="watch", conversation=str(conversation))
    frames = await receive_until(intruder, lambda f: "toast" in f)

    assert "does not exist" in frames[-1]
    assert "secret" not in "".join(frames)
    await owner.disconnect()
    await intruder.disconnect()


async def test_sending_into_another_users_conversation_is_refused(gateway, user, other_user):
    owner = await open_socket(other_user)
    await chat_turn(owner, "A secret plan")
    conversation = (await answers())[0].conversation_id
    intruder = await open_socket(user)

    await send(intruder, action="send", conversation=str(conversation), text="Let me in")
    frames = await receive_until(intruder, lambda f: "composer-error" in f)

    assert "does not exist" in frames[-1]
    count = await sync_to_async(Message.objects.filter(conversation_id=conversation).count)()
    assert count == 2
    await owner.disconnect()
    await intruder.disconnect()


async def test_stopping_another_users_answer_does_nothing(gateway, user, other_user):
    model = await use_model(SLOW)
    owner = await open_socket(other_user)
    await send(owner, action="send", conversation="", text="Tell me a story", model=str(model))
    frames = await receive_until(owner, streamed_text)
    pk = answer_id(frames)
    intruder = await open_socket(user)

    await send(intruder, action="stop", message=str(pk))
    await receive_until(owner, final_answer)

    answer = await sync_to_async(Message.objects.get)(pk=pk)
    assert answer.status == "complete"
    await owner.disconnect()
    await intruder.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"action": "dance"}',
        '{"action": "stop", "message": "abc"}',
        '{"action": "stop"}',
        '{"action": "watch", "conversation": -3}',
        '{"action": "send", "conversation": "", "text": ["x"]}',
        "{}",
        '"' + "x" * 300_000 + '"',
    ],
)
async def test_malformed_frames_get_an_error_and_the_socket_stays_usable(frame, gateway, user):
    socket = await open_socket(user)

    await socket.send_to(text_data=frame)
    frames = await receive_until(socket, lambda f: "toast" in f)
    await send(socket, action="send", conversation="", text="Still there?")
    await receive_until(socket, final_answer)

    assert "could not be read" in frames[-1]
    await socket.disconnect()


async def test_blank_and_overlong_messages_are_refused_and_not_saved(gateway, user, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 50
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="   \n ")
    blank = await receive_until(socket, lambda f: "composer-error" in f)
    await send(socket, action="send", conversation="", text="x" * 51)
    overlong = await receive_until(socket, lambda f: "composer-error" in f)

    assert "Type a message" in blank[-1]
    assert "limit is 50" in overlong[-1]
    assert await sync_to_async(Message.objects.count)() == 0
    await socket.disconnect()


async def test_concurrent_generations_are_limited_per_user(gateway, user, settings):
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 1
    model = await use_model(SLOW)
    socket = await open_socket(user)
    await send(socket, action="send", conversation="", text="One", model=str(model))
    await receive_until(socket, streamed_text)

    await send(socket, action="send", conversation="", text="Two", model=str(model))
    frames = await receive_until(socket, lambda f: "composer-error" in f)

    assert "limit is 1" in frames[-1]
    await receive_until(socket, final_answer, timeout=30)
    await socket.disconnect()


async def test_gateway_failure_is_shown_in_the_bubble_with_retry(gateway, user):
    model = await use_model("sim-chat+fault=failed")
    socket = await open_socket(user)

    frames = await chat_turn(socket, "Hello", model=str(model))

    answer = (await answers())[0]
    assert answer.status == "failed"
    assert answer.text  # the partial text before the failure is kept
    assert "message-error" in frames[-1]
    assert 'value="retry"' in frames[-1]
    await socket.disconnect()


async def test_retry_answers_again_as_a_new_branch(gateway, user):
    model = await use_model("sim-chat+fault=failed,times:1,tag:retry")
    socket = await open_socket(user)
    await chat_turn(socket, "Hello", model=str(model))
    failed = (await answers())[0]

    await send(socket, action="retry", message=str(failed.pk))
    frames = await receive_until(
        socket, lambda f: final_answer(f) and f'id="message-{failed.pk}"' not in f
    )

    retried = (await answers())[1]
    assert retried.status == "complete"
    assert retried.parent_id == failed.parent_id
    redrawn = next(frame for frame in frames if 'id="messages" hx-swap-oob="innerHTML"' in frame)
    assert f'id="message-{failed.pk}"' not in redrawn
    assert "2 / 2" in visible_text(frames[-1])
    await socket.disconnect()


async def test_first_answer_names_the_conversation(gateway, user):
    socket = await open_socket(user)

    await chat_turn(socket, "How do I bake sourdough bread at home?")
    frames = await receive_until(socket, lambda f: "conversation-title" in f)

    conversation = await sync_to_async(Conversation.objects.get)()
    assert conversation.title
    assert conversation.title in frames[-1]
    await socket.disconnect()


async def test_anonymous_socket_is_refused():
    socket = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"origin", b"http://localhost")]
    )

    connected, _ = await socket.connect()

    assert connected
    assert await socket.receive_output() == {"type": "websocket.close", "code": 4401}


async def test_deactivating_a_user_closes_their_open_socket(gateway, user):
    socket = await open_socket(user)
    await chat_turn(socket, "Hello")

    user.is_active = False
    await sync_to_async(user.save)()
    output = await socket.receive_output(timeout=5)
    while output["type"] == "websocket.send":  # a title or sidebar update still in flight
        output = await socket.receive_output(timeout=5)

    assert output == {"type": "websocket.close", "code": 4403}


async def test_answers_show_the_models_catalogue_label(gateway, user):
    socket = await open_socket(user)

    frames = await chat_turn(socket, "Hello")

    assert '<span class="model-name" title="sim-chat">Sim Chat</span>' in frames[-1]
    await socket.disconnect()
