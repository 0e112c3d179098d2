"""Presence and typing over the real chat websocket and the real channel layer: who is
here, each once, gone when their socket closes, vanishes or is removed; typing reaches
the others but not the typer, bounded however hard the page sends it."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import Client
from django.urls import reverse

from conversations.groups import membership, presence
from conversations.models import Conversation, ConversationMember
from conversations.pipeline import broadcast
from tests.support.chat import open_socket, receive_until, send, session_cookie, visible_text

pytestmark = pytest.mark.django_db(transaction=True)

TYPING_LINE = re.compile(r'<div id="typing-line"[^>]*>(.*?)</div>', re.S)


@sync_to_async
def make_group(owner, *members) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title="Standup", is_group=True)
    for member in members:
        ConversationMember.objects.create(conversation=conversation, user=member, invited_by=owner)
    return conversation


@sync_to_async
def make_people(make_user):
    owner = make_user("ming", first_name="Ming")
    mei = make_user("mei", first_name="Mei")
    return owner, mei


async def watching(user, conversation: Conversation):
    socket = await open_socket(user)
    await send(socket, action="watch", conversation=conversation.pk)
    await receive_until(socket, lambda frame: 'id="messages"' in frame)
    return socket


def here_now(count: int):
    return lambda frame: 'id="presence-bar"' in frame and f"{count} here now" in frame


def typing_says(text: str):
    """A frame whose typing line reads `text` ("" for an emptied line)."""

    def matches(frame: str) -> bool:
        line = TYPING_LINE.search(frame)
        return line is not None and visible_text(line.group(1)) == text

    return matches


async def quiet(socket, timeout: float = 0.5) -> list[str]:
    """Return whatever the socket receives until it is quiet for `timeout`."""
    frames = []
    while not await socket.receive_nothing(timeout=timeout):
        frames.append(await socket.receive_from())
    return frames


@pytest.fixture
def room_events(monkeypatch) -> list[dict]:
    """Every event the consumers send to a group, as sent (the layer still delivers)."""
    layer = get_channel_layer()
    original = layer.group_send
    sent: list[dict] = []

    async def group_send(group, message):
        sent.append(message)
        await original(group, message)

    monkeypatch.setattr(layer, "group_send", group_send)
    return sent


def typing_events(events: list[dict]) -> list[dict]:
    return [event for event in events if event["type"] == "room.typing"]


async def test_presence_shows_both_people_once_and_a_closed_socket_leaves(make_user):
    owner, mei = await make_people(make_user)
    conversation = await make_group(owner, mei)
    owner_tab = await watching(owner, conversation)
    await receive_until(owner_tab, here_now(1))

    mei_tab = await watching(mei, conversation)
    seen = await receive_until(mei_tab, here_now(2))
    assert 'title="Ming"' in seen[-1] and 'title="Mei"' in seen[-1]
    await receive_until(owner_tab, here_now(2))

    # Mei's second tab: still two people, and the owner's bar is not drawn again.
    mei_second = await watching(mei, conversation)
    await receive_until(mei_second, here_now(2))
    assert not [frame for frame in await quiet(owner_tab) if "presence-bar" in frame]

    await mei_tab.disconnect()
    assert not [frame for frame in await quiet(owner_tab) if "presence-bar" in frame]
    await mei_second.disconnect()
    frames = await receive_until(owner_tab, here_now(1))
    assert 'title="Mei"' not in frames[-1]
    await owner_tab.disconnect()


async def test_switching_conversation_says_goodbye(make_user, room_events):
    owner, mei = await make_people(make_user)
    group = await make_group(owner, mei)
    own = await sync_to_async(Conversation.objects.create)(owner=mei, title="Mine")
    owner_tab = await watching(owner, group)
    mei_tab = await watching(mei, group)
    await receive_until(owner_tab, here_now(2))

    await send(mei_tab, action="watch", conversation=own.pk)
    await receive_until(owner_tab, here_now(1))
    byes = [event for event in room_events if event["type"] == "room.bye"]
    assert [event["conversation_id"] for event in byes] == [group.pk]

    # Her private chat shows no presence bar: nobody but her could be there.
    assert not [frame for frame in await quiet(mei_tab) if "presence-bar" in frame]
    for socket in (owner_tab, mei_tab):
        await socket.disconnect()


async def test_a_removed_member_stops_appearing_at_once(make_user, room_events):
    owner, mei = await make_people(make_user)
    conversation = await make_group(owner, mei)
    owner_tab = await watching(owner, conversation)
    mei_tab = await watching(mei, conversation)
    await receive_until(owner_tab, here_now(2))

    await sync_to_async(membership.remove)(conversation, owner, mei.pk)
    await broadcast.removed_from_conversation(mei.pk, conversation.pk)
    await receive_until(owner_tab, here_now(1))

    # Her socket is out of the room: her typing goes nowhere, and nothing reaches her.
    await send(mei_tab, action="typing", conversation=conversation.pk)
    await quiet(mei_tab)
    assert typing_events(room_events) == []
    assert not [frame for frame in await quiet(owner_tab) if "is typing" in frame]
    for socket in (owner_tab, mei_tab):
        await socket.disconnect()


async def test_a_socket_that_vanished_without_a_goodbye_expires(make_user, monkeypatch):
    monkeypatch.setattr(presence, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(presence, "EXPIRY_SECONDS", 0.5)
    owner, _mei = await make_people(make_user)
    conversation = await make_group(owner)
    owner_tab = await watching(owner, conversation)
    await receive_until(owner_tab, here_now(1))

    # A socket of a process that then died: it said hello, and nothing ever again.
    ghost = presence.Here(999, "Ghost", "G")
    hello = presence.hello_event(conversation.pk, "specific.ghost!1", ghost)
    await get_channel_layer().group_send(broadcast.conversation_group(conversation.pk), hello)
    await receive_until(owner_tab, here_now(2))
    frames = await receive_until(owner_tab, here_now(1), timeout=5)
    assert 'title="Ghost"' not in frames[-1]
    await owner_tab.disconnect()


async def test_typing_reaches_the_others_but_not_the_typer_and_ends_with_the_message(
    gateway, make_user
):
    owner, mei = await make_people(make_user)
    li = await sync_to_async(make_user)("li", first_name="Li")
    conversation = await make_group(owner, mei, li)  # three: a message asks the model nothing
    owner_tab = await watching(owner, conversation)
    mei_tab = await watching(mei, conversation)
    mei_second = await watching(mei, conversation)
    await receive_until(owner_tab, here_now(2))

    await send(mei_tab, action="typing", conversation=conversation.pk)
    await receive_until(owner_tab, typing_says("Mei is typing…"))
    for socket in (mei_tab, mei_second):
        assert not [frame for frame in await quiet(socket) if "is typing" in frame]

    await send(mei_tab, action="send", conversation=conversation.pk, text="Coffee?")
    frames = await receive_until(owner_tab, typing_says(""), timeout=3)  # not 6 s later
    if not any("Coffee?" in visible_text(frame) for frame in frames):
        await receive_until(owner_tab, lambda frame: "Coffee?" in visible_text(frame))
    for socket in (owner_tab, mei_tab, mei_second):
        await socket.disconnect()


async def test_two_and_three_typers(make_user):
    owner, mei = await make_people(make_user)
    li = await sync_to_async(make_user)("li", first_name="Li")
    wang = await sync_to_async(make_user)("wang", first_name="王", last_name="小明")
    conversation = await make_group(owner, mei, li, wang)
    owner_tab = await watching(owner, conversation)
    tabs = [await watching(person, conversation) for person in (mei, li, wang)]
    await receive_until(owner_tab, here_now(4))
    frames = await receive_until(tabs[0], here_now(4))
    assert '<span class="avatar" title="王小明">小明</span>' in frames[-1]

    await send(tabs[0], action="typing", conversation=conversation.pk)
    await receive_until(owner_tab, typing_says("Mei is typing…"))
    await send(tabs[1], action="typing", conversation=conversation.pk)
    await receive_until(owner_tab, typing_says("Mei and Li are typing…"))
    await send(tabs[2], action="typing", conversation=conversation.pk)
    await receive_until(owner_tab, typing_says("3 people are typing…"))
    # Mei sees the other two, never herself.
    await receive_until(tabs[0], typing_says("Li and 王小明 are typing…"))
    for socket in (owner_tab, *tabs):
        await socket.disconnect()


async def test_typing_ends_by_itself_after_the_last_keystroke(make_user, monkeypatch):
    monkeypatch.setattr(presence, "TYPING_SECONDS", 0.4)
    owner, mei = await make_people(make_user)
    conversation = await make_group(owner, mei)
    owner_tab = await watching(owner, conversation)
    mei_tab = await watching(mei, conversation)
    await receive_until(owner_tab, here_now(2))

    await send(mei_tab, action="typing", conversation=conversation.pk)
    await receive_until(owner_tab, typing_says("Mei is typing…"))
    await receive_until(owner_tab, typing_says(""), timeout=3)
    for socket in (owner_tab, mei_tab):
        await socket.disconnect()


async def test_a_flood_of_typing_frames_is_one_broadcast_per_interval_and_no_reply(
    make_user, monkeypatch, room_events
):
    monkeypatch.setattr(presence, "TYPING_INTERVAL_SECONDS", 1.0)  # the page's is 3 s
    owner, mei = await make_people(make_user)
    conversation = await make_group(owner, mei)
    owner_tab = await watching(owner, conversation)
    mei_tab = await watching(mei, conversation)
    await receive_until(owner_tab, here_now(2))
    await quiet(mei_tab)
    frame = json.dumps({"action": "typing", "conversation": str(conversation.pk)})

    for _ in range(100):  # past the frame budget (a burst of 30): dropped without a word
        await mei_tab.send_to(text_data=frame)
    await receive_until(owner_tab, typing_says("Mei is typing…"))
    assert await quiet(mei_tab) == []  # no toast, no error
    assert len(typing_events(room_events)) == 1

    await asyncio.sleep(1.0)
    await mei_tab.send_to(text_data=frame)  # the interval has passed: one more
    assert await quiet(mei_tab) == []
    assert len(typing_events(room_events)) == 2
    for socket in (owner_tab, mei_tab):
        await socket.disconnect()


async def test_typing_without_a_conversation_on_show_is_ignored(make_user, room_events):
    owner, mei = await make_people(make_user)
    conversation = await make_group(owner, mei)
    other = await make_group(owner, mei)
    owner_tab = await watching(owner, conversation)
    owner_other = await watching(owner, other)

    mei_tab = await open_socket(mei)  # shows nothing yet
    await send(mei_tab, action="typing")
    await send(mei_tab, action="typing", conversation=conversation.pk)
    assert await quiet(mei_tab) == []

    await send(mei_tab, action="watch", conversation=other.pk)
    await receive_until(mei_tab, lambda frame: 'id="messages"' in frame)
    await send(mei_tab, action="typing", conversation=conversation.pk)  # not the one shown
    await quiet(mei_tab)
    assert typing_events(room_events) == []
    for socket in (owner_tab, owner_other):
        assert not [frame for frame in await quiet(socket) if "is typing" in frame]
    for socket in (owner_tab, owner_other, mei_tab):
        await socket.disconnect()


async def test_typing_alone_goes_nowhere(make_user, room_events):
    owner, mei = await make_people(make_user)
    conversation = await make_group(owner, mei)
    owner_tab = await watching(owner, conversation)
    owner_second = await watching(owner, conversation)  # only the typer's own tabs

    await send(owner_tab, action="typing", conversation=conversation.pk)
    await quiet(owner_second)
    assert typing_events(room_events) == []
    for socket in (owner_tab, owner_second):
        await socket.disconnect()


def test_the_chat_page_has_an_empty_presence_bar_and_typing_line(make_user):
    owner = make_user("ming")
    conversation = Conversation.objects.create(owner=owner, title="Standup", is_group=True)
    client = Client()
    client.force_login(owner)

    page = client.get(reverse("conversation", args=[conversation.pk])).content.decode()

    assert '<div id="presence-bar" class="presence-bar" hidden></div>' in page
    assert '<div id="typing-line" class="typing-line"></div>' in page
    assert "chatweb/presence.js" in page


# --- Across processes ---------------------------------------------------------------


@pytest.mark.skipif(
    not getattr(settings, "REDIS_URL", ""),
    reason="a second process shares the channel layer only through Redis (set REDIS_URL)",
)
async def test_presence_and_typing_reach_a_socket_in_another_process(make_user, servers):
    from websockets.asyncio.client import connect

    owner, mei = await make_people(make_user)
    conversation = await make_group(owner, mei)
    owner_tab = await watching(owner, conversation)
    await receive_until(owner_tab, here_now(1))
    server = await sync_to_async(servers)()
    url = server.url.replace("http://", "ws://") + "/ws/chat/"
    headers = {"Cookie": (await session_cookie(mei)).decode(), "Origin": server.url}

    async def heard(socket, predicate) -> None:
        async with asyncio.timeout(15):
            while not predicate(await socket.recv()):
                pass

    async with connect(url, additional_headers=headers, origin=None, ping_interval=None) as mei_tab:
        await mei_tab.send(json.dumps({"action": "watch", "conversation": conversation.pk}))
        await heard(mei_tab, here_now(2))
        await receive_until(owner_tab, here_now(2))

        await mei_tab.send(json.dumps({"action": "typing", "conversation": conversation.pk}))
        await receive_until(owner_tab, typing_says("Mei is typing…"))
        await send(owner_tab, action="typing", conversation=conversation.pk)
        await heard(mei_tab, typing_says("Ming is typing…"))

    await receive_until(owner_tab, here_now(1))  # her socket closed: its goodbye came over
    await owner_tab.disconnect()
