"""A group conversation over the real websocket: members see each other's messages and
the model's answer live, any member stops it, and every frame type is refused to a
removed member and to a stranger."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from conversations.groups import membership
from conversations.models import Conversation, Message
from conversations.pipeline import broadcast
from tests.support.chat import final_answer, open_socket, receive_until, send, visible_text
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = "sim-chat+fault=slow:40"


@sync_to_async
def make_group(owner, *members) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title="Standup")
    membership.invite(conversation, owner, members)
    conversation.refresh_from_db()
    return conversation


@sync_to_async
def slow_model() -> int:
    from conversations.models import ModelChoice

    return ModelChoice.objects.get_or_create(upstream_id=SLOW, defaults={"label": SLOW})[0].pk


@sync_to_async
def messages_of(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.order_by("pk"))


def shows(text: str):
    return lambda frame: text in visible_text(frame)


async def watching(user, conversation: Conversation):
    socket = await open_socket(user)
    await send(socket, action="watch", conversation=conversation.pk)
    await receive_until(socket, lambda frame: 'id="messages"' in frame)
    return socket


async def test_members_see_each_others_messages_and_the_answer_live(gateway, user, make_user):
    mei = await sync_to_async(make_user)("mei", first_name="Mei")
    conversation = await make_group(user, mei)
    owner_tab, mei_tab = await watching(user, conversation), await watching(mei, conversation)

    await send(owner_tab, action="send", conversation=conversation.pk, text="Morning all")
    seen = await receive_until(mei_tab, final_answer)

    assert any("Morning all" in frame and 'class="message-author"' in frame for frame in seen)
    assert any("stream-tail" in frame for frame in seen[:-1])  # streamed, not all at once
    await receive_until(owner_tab, final_answer)
    for socket in (owner_tab, mei_tab):
        await socket.disconnect()


async def test_talk_without_a_mention_reaches_the_others_and_asks_nothing(gateway, user, make_user):
    mei, li = await sync_to_async(make_user)("mei"), await sync_to_async(make_user)("li")
    conversation = await make_group(user, mei, li)
    li_tab, mei_tab = await watching(li, conversation), await watching(mei, conversation)

    await send(mei_tab, action="send", conversation=conversation.pk, text="Coffee first?")
    await receive_until(mei_tab, lambda frame: 'id="turn-accepted"' in frame)
    frames = await receive_until(li_tab, shows("Coffee first?"))

    assert "mei" in visible_text(frames[-1])
    saved = await messages_of(conversation)
    assert [(m.role, m.text) for m in saved] == [("user", "Coffee first?")]
    for socket in (li_tab, mei_tab):
        await socket.disconnect()


async def test_another_member_stops_the_answer(gateway, user, make_user):
    mei = await sync_to_async(make_user)("mei")
    conversation = await make_group(user, mei)
    owner_tab, mei_tab = await watching(user, conversation), await watching(mei, conversation)

    await send(
        owner_tab,
        action="send",
        conversation=conversation.pk,
        text="Write a long report",
        model=await slow_model(),
    )
    frames = await receive_until(mei_tab, lambda frame: "stream-tail" in frame)
    answer = int(re.findall(r'id="message-(\d+)-tail"', "".join(frames))[-1])
    await send(mei_tab, action="stop", message=answer)

    final = await receive_until(owner_tab, final_answer)
    assert "status-cancelled" in final[-1]
    for socket in (owner_tab, mei_tab):
        await socket.disconnect()


async def test_a_removed_member_stops_seeing_the_answer_at_once(gateway, user, make_user):
    mei = await sync_to_async(make_user)("mei")
    conversation = await make_group(user, mei)
    owner_tab, mei_tab = await watching(user, conversation), await watching(mei, conversation)
    await send(
        owner_tab,
        action="send",
        conversation=conversation.pk,
        text="Long one",
        model=await slow_model(),
    )
    await receive_until(mei_tab, lambda frame: "stream-tail" in frame)

    await sync_to_async(membership.remove)(conversation, user, mei.pk)
    await broadcast.removed_from_conversation(mei.pk, conversation.pk)
    frames = await receive_until(mei_tab, shows("You are no longer in this conversation"))
    await receive_until(owner_tab, final_answer)

    # Nothing of the answer after the notice: the socket let go of it.
    assert await mei_tab.receive_nothing(timeout=0.3)
    assert frames
    answer = next(m for m in await messages_of(conversation) if m.role == "assistant")
    assert answer.text  # the owner's answer is whole, and kept
    for socket in (owner_tab, mei_tab):
        await socket.disconnect()


async def frames_after(socket, **frame) -> str:
    await send(socket, **frame)
    found = []
    while not await socket.receive_nothing(timeout=0.4):
        found.append(await socket.receive_from())
    return "".join(found)


@pytest.mark.parametrize("who", ["removed", "stranger"])
async def test_every_frame_type_is_refused_to_a_removed_member_and_a_stranger(
    gateway, user, make_user, who
):
    mei = await sync_to_async(make_user)("mei")
    conversation = await make_group(user, mei)
    owner_tab = await watching(user, conversation)
    await send(owner_tab, action="send", conversation=conversation.pk, text="Secret plan")
    await receive_until(owner_tab, final_answer)
    question, answer = await messages_of(conversation)
    if who == "removed":
        await sync_to_async(membership.remove)(conversation, user, mei.pk)
        outsider = mei
    else:
        outsider = await sync_to_async(make_user)("stranger")
    socket = await open_socket(outsider)

    for frame in (
        {"action": "watch", "conversation": conversation.pk},
        {"action": "send", "conversation": conversation.pk, "text": "let me in"},
        {"action": "stop", "message": answer.pk},
        {"action": "regenerate", "message": answer.pk},
        {"action": "retry", "message": answer.pk},
        {"action": "edit", "message": question.pk, "text": "changed"},
        {"action": "branch", "message": question.pk},
        {"action": "typing"},
    ):
        shown = await frames_after(socket, **frame)
        assert "Secret plan" not in shown and answer.text[:30] not in shown, frame

    assert [(m.pk, m.text) for m in await messages_of(conversation)] == [
        (question.pk, "Secret plan"),
        (answer.pk, answer.text),
    ]
    await socket.disconnect()
    await owner_tab.disconnect()


async def test_every_frame_type_works_for_a_member(gateway, user, make_user):
    mei = await sync_to_async(make_user)("mei")
    conversation = await make_group(user, mei)
    mei_tab = await watching(mei, conversation)

    async def three_answers():
        saved = await messages_of(conversation)
        return len([m for m in saved if m.role == "assistant" and not m.is_streaming]) == 3

    await send(mei_tab, action="send", conversation=conversation.pk, text="First")
    await receive_until(mei_tab, final_answer)
    question, answer = await messages_of(conversation)
    await send(mei_tab, action="regenerate", message=answer.pk)
    await receive_until(mei_tab, final_answer)
    await send(mei_tab, action="edit", message=question.pk, text="First, edited")
    await receive_until(mei_tab, final_answer)
    await wait_until_async(three_answers, what="the member's regeneration and edit")
    await send(mei_tab, action="branch", message=question.pk)
    await receive_until(mei_tab, lambda frame: 'id="messages"' in frame)
    await send(mei_tab, action="typing")

    saved = await messages_of(conversation)
    assert {m.author_id for m in saved if m.role == "user"} == {mei.pk}
    conversation = await sync_to_async(Conversation.objects.get)(pk=conversation.pk)
    # The branch switch went through: the first question's branch is on show again.
    assert conversation.current_leaf_id != saved[-1].pk
    await mei_tab.disconnect()


@pytest.mark.parametrize("how", ["one", "all archived"])
async def test_the_owner_deleting_the_group_closes_it_in_the_members_tabs(
    gateway, user, make_user, how
):
    mei = await sync_to_async(make_user)("mei")
    conversation = await make_group(user, mei)
    mei_tab = await watching(mei, conversation)

    @sync_to_async
    def delete() -> None:
        client = Client()
        client.force_login(user)
        if how == "one":
            client.post(f"/c/{conversation.pk}/delete/")
        else:
            client.post(f"/c/{conversation.pk}/archive/")
            client.post("/archive/delete/")

    await delete()

    await receive_until(mei_tab, shows("You are no longer in this conversation"))
    await mei_tab.disconnect()
