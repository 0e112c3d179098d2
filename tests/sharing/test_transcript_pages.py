"""Long conversations open on their latest messages and load earlier ones on request."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from conversations.history import reads
from conversations.models import Conversation, Message


def long_conversation(user, count: int) -> tuple[Conversation, list[Message]]:
    conversation = Conversation.objects.create(owner=user, title="Long")
    start = timezone.now() - timedelta(days=1)
    messages, parent = [], None
    for i in range(count):
        parent = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role="user" if i % 2 == 0 else "assistant",
            text=f"message {i}",
            created_at=start + timedelta(seconds=i),
        )
        messages.append(parent)
    return conversation, messages


def test_long_conversation_opens_on_its_latest_page(user):
    conversation, messages = long_conversation(user, 250)

    view = reads.transcript(user, conversation.pk)

    assert [m.pk for m in view.messages] == [m.pk for m in messages[-100:]]
    assert view.earlier_than == messages[150].pk


def test_earlier_pages_follow_on_without_gaps(user):
    conversation, messages = long_conversation(user, 250)

    seen, before = [], None
    while True:
        view = reads.transcript(user, conversation.pk, before=before)
        seen = [m.pk for m in view.messages] + seen
        if not view.earlier_than:
            break
        before = view.earlier_than

    assert seen == [m.pk for m in messages]


def test_a_linked_message_is_on_the_page_that_opens(user):
    conversation, messages = long_conversation(user, 250)

    view = reads.transcript(user, conversation.pk, around=messages[20].pk)

    assert messages[20] in view.messages
    assert view.messages[-1] == messages[-1]


def test_load_earlier_button_fetches_the_previous_page(client, user):
    client.force_login(user)
    conversation, messages = long_conversation(user, 150)

    page = client.get(f"/c/{conversation.pk}/").content.decode()
    earlier = client.get(f"/c/{conversation.pk}/earlier/?before={messages[50].pk}")

    assert "Load earlier messages" in page
    assert "message 149" in page and "message 49<" not in page
    assert "message 0<" in earlier.content.decode()
    assert "Load earlier messages" not in earlier.content.decode()


def test_page_query_count_does_not_grow_with_length(client, user, django_assert_max_num_queries):
    client.force_login(user)
    conversation, _ = long_conversation(user, 400)

    with django_assert_max_num_queries(16):
        client.get(f"/c/{conversation.pk}/")


def test_another_users_earlier_messages_are_not_found(client, user, other_user):
    conversation, messages = long_conversation(other_user, 10)
    client.force_login(user)

    assert client.get(f"/c/{conversation.pk}/earlier/?before={messages[5].pk}").status_code == 404
