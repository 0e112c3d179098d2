"""Transcripts of a chat with an assistant: its name shown, its instructions never, and
"continue in a new chat" keeps it only for a reader who may use it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from conversations.assistants.library import record_version
from conversations.models import Assistant, Conversation, ShareLink, Visibility
from conversations.sharing import links as sharing
from tests.support.messages import say

SECRET = "Always recommend the premium plan."


@pytest.fixture
def helper(user) -> Assistant:
    return record_version(
        Assistant(owner=user, name="Travel agent", instructions=SECRET, visibility=Visibility.TEAM)
    )


@pytest.fixture
def conversation(user, helper) -> Conversation:
    conversation = Conversation.objects.create(
        owner=user, title="Trip plans", assistant=helper, instructions="Owner's own notes."
    )
    say(
        conversation, "Where should we go?", "Try the coast.", assistant=helper, assistant_version=1
    )
    return conversation


def share(conversation) -> ShareLink:
    return sharing.create_link(conversation=conversation, visibility="team")


def read(client, reader, link: ShareLink) -> str:
    client.force_login(reader)
    return client.get(reverse("shared_transcript", args=[link.token])).content.decode()


def continue_as(client, reader, link: ShareLink) -> Conversation:
    client.force_login(reader)
    client.post(reverse("continue_shared", args=[link.token]))
    return Conversation.objects.get(owner=reader)


def test_shared_transcript_names_the_assistant(client, other_user, conversation):
    page = read(client, other_user, share(conversation))
    assert "With assistant: <strong>Travel agent</strong>" in page


def test_shared_transcript_never_shows_instructions(client, make_user, helper, conversation):
    helper.visibility = Visibility.PRIVATE
    helper.save()
    page = read(client, make_user("stranger"), share(conversation))
    assert "Travel agent" in page
    assert SECRET not in page and "Owner's own notes." not in page


def test_transcript_names_the_answers_assistant_after_the_chat_left_it(
    client, other_user, conversation
):
    Conversation.objects.filter(pk=conversation.pk).update(assistant=None)
    assert "With assistant: <strong>Travel agent</strong>" in read(
        client, other_user, share(conversation)
    )


def test_transcript_without_an_assistant_says_nothing_of_one(client, user, other_user):
    plain = Conversation.objects.create(owner=user, title="Plain")
    say(plain, "Hi", "Hello")
    assert "With assistant" not in read(client, other_user, share(plain))


def test_review_names_the_assistant_but_not_its_instructions(client, make_user, conversation):
    auditor = make_user("auditor", is_staff=True)
    auditor.user_permissions.set(Permission.objects.filter(codename="review_conversations"))
    client.force_login(auditor)
    url = reverse("admin:conversations_reviewedconversation_change", args=[conversation.pk])
    page = client.get(url).content.decode()
    assert "With assistant: <strong>Travel agent</strong>" in page and SECRET not in page


def test_continue_keeps_the_assistant_for_a_reader_who_may_use_it(
    client, other_user, helper, conversation
):
    copy = continue_as(client, other_user, share(conversation))
    answer = copy.visible_branch()[-1]
    assert copy.assistant == helper and (answer.assistant, answer.assistant_version) == (helper, 1)


def test_continue_drops_an_assistant_the_reader_may_not_use(
    client, other_user, helper, conversation
):
    helper.visibility = Visibility.PRIVATE
    helper.save()
    copy = continue_as(client, other_user, share(conversation))
    assert copy.assistant is None and copy.visible_branch()[-1].assistant is None


def test_continue_drops_a_disabled_assistant(client, other_user, helper, conversation):
    helper.enabled = False
    helper.save()
    assert continue_as(client, other_user, share(conversation)).assistant is None


def test_continue_never_copies_instructions(client, other_user, conversation):
    copy = continue_as(client, other_user, share(conversation))
    assert copy.instructions == ""
