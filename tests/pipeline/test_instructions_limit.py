"""A conversation's instructions are capped like messages, and what was typed is kept.

Instructions go to the model with every turn; 190,000 characters were once accepted and
resent each time. Over the real socket, with the simulator over HTTP.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import Client, override_settings

from conversations.models import Conversation, Message
from tests.support import attacks
from tests.support.chat import final_answer, open_socket, receive_until, send

pytestmark = pytest.mark.django_db(transaction=True)

REFUSAL = (
    "These instructions are 8,001 characters long; the limit is 8,000. Shorten them and send again."
)


def refusal(frame: str) -> bool:
    return 'id="composer-error"' in frame and 'data-restore="1"' in frame


@sync_to_async
def saved() -> tuple[list[Conversation], list[Message]]:
    return list(Conversation.objects.all()), list(Message.objects.all())


async def test_instructions_over_the_limit_are_refused_and_nothing_is_saved(gateway, user):
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Hi", instructions="x" * 8001)
    frames = await receive_until(socket, refusal)

    assert REFUSAL in frames[-1]  # the page puts the typed text back (data-restore)
    assert await saved() == ([], [])
    attacks.record(
        "instructions of 8,001 characters (limit 8,000)",
        before="190,000 characters accepted and sent every turn",
        observed="refused with the typed text kept; nothing saved",
    )
    await socket.disconnect()


async def test_too_long_instructions_leave_the_conversations_own_unchanged(gateway, user):
    conversation = await sync_to_async(Conversation.objects.create)(
        owner=user, instructions="Answer briefly."
    )
    socket = await open_socket(user)

    await send(
        socket, action="send", conversation=str(conversation.pk), text="Hi", instructions="y" * 8001
    )
    await receive_until(socket, refusal)

    await sync_to_async(conversation.refresh_from_db)()
    assert conversation.instructions == "Answer briefly."
    assert await sync_to_async(Message.objects.count)() == 0
    await socket.disconnect()


async def test_instructions_at_the_limit_are_kept(gateway, user):
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Hi", instructions="z" * 8000)
    await receive_until(socket, final_answer)

    conversations, _ = await saved()
    assert conversations[0].instructions == "z" * 8000
    await socket.disconnect()


@override_settings(CHAT_MAX_INSTRUCTIONS_CHARS=10)
async def test_the_limit_is_a_setting(gateway, user):
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Hi", instructions="w" * 11)
    frames = await receive_until(socket, refusal)

    assert "11 characters long; the limit is 10." in frames[-1]
    await socket.disconnect()


@override_settings(CHAT_MAX_INSTRUCTIONS_CHARS=1234)
def test_the_instructions_box_takes_no_more_than_the_limit(user):
    client = Client()
    client.force_login(user)

    page = client.get("/").content.decode()

    assert 'name="instructions" form="composer" rows="4" maxlength="1234"' in page


async def test_a_nul_character_in_a_message_is_dropped_and_the_rest_is_sent(gateway, user):
    """PostgreSQL cannot store NUL; the message must not be lost over an invisible byte."""
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Hel\x00lo", instructions="a\x00b")
    await receive_until(socket, final_answer)

    conversations, messages = await saved()
    assert messages[0].text == "Hello"
    assert conversations[0].instructions == "ab"
    await socket.disconnect()
