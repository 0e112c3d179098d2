"""Sidebar updates to a user's tabs: at most one a second per conversation, the last
always delivered.

Every `conversation_changed` makes each of the user's tabs re-read the conversation and
redraw its sidebar entry; a burst of changes must not become a burst of reads and
redraws per tab, yet the tabs must end up showing the latest state.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation
from conversations.pipeline import broadcast
from tests.support.chat import open_socket, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def conversation(user, title: str) -> int:
    return Conversation.objects.create(owner=user, title=title).pk


@sync_to_async
def rename(conversation_id: int, title: str) -> None:
    Conversation.objects.filter(pk=conversation_id).update(title=title)


async def test_ten_changes_in_a_second_redraw_the_sidebar_at_most_twice(user):
    socket = await open_socket(user)
    chat = await conversation(user, "Title 0")

    for number in range(10):
        await rename(chat, f"Title {number}")
        await broadcast.conversation_changed(user.pk, chat)
    frames = await receive_until(socket, lambda frame: "Title 9" in frame)

    redraws = [frame for frame in frames if f"conversation-link-{chat}-gone" in frame]
    assert len(redraws) <= 2
    # Nothing after it: the last redraw already showed the last change.
    assert await socket.receive_nothing(timeout=1.5)
    await socket.disconnect()
