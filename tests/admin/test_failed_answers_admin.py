"""What the gateway said about a failed answer: shown to reviewers, never to link readers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from conversations.models import Conversation, Message
from conversations.sharing import links

GATEWAY_SAID = "litellm.BadRequestError: <script>alert(1)</script> Invalid model name"


@pytest.fixture
def failed(user) -> Conversation:
    conversation = Conversation.objects.create(owner=user, title="Broken turn")
    asked = Message.objects.create(conversation=conversation, role="user", text="Hello?")
    Message.objects.create(
        conversation=conversation,
        parent=asked,
        role="assistant",
        status=Message.Status.FAILED,
        error="This model is not available on the model service.",
        error_code="model_not_found",
        error_detail=GATEWAY_SAID,
        model_name="gone-model",
    )
    return conversation


@pytest.fixture
def reviewer(client, make_user):
    member = make_user("auditor", is_staff=True)
    member.user_permissions.set(Permission.objects.filter(codename="review_conversations"))
    client.force_login(member)
    return client


def test_review_shows_what_the_gateway_said_beside_the_error(reviewer, failed):
    url = reverse("admin:conversations_reviewedconversation_change", args=[failed.pk])
    page = reviewer.get(url).content.decode()
    assert "This model is not available on the model service." in page
    assert "What the model service said" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Invalid model name" in page
    assert "<script>alert(1)" not in page


def test_shared_link_hides_what_the_gateway_said(client, user, failed):
    link = links.create_link(conversation=failed, visibility="team")
    client.force_login(user)
    page = client.get(reverse("shared_transcript", args=[link.token])).content.decode()
    assert "This model is not available" in page and "Invalid model name" not in page


def test_owner_chat_page_hides_what_the_gateway_said(client, user, failed):
    client.force_login(user)
    page = client.get(reverse("conversation", args=[failed.pk])).content.decode()
    assert "This model is not available" in page and "Invalid model name" not in page
