"""Another user learns nothing: every URL that names someone's object answers 404.

One table of every URL with a conversation, message, attachment or share-link id in
it, requested by a signed-in user who does not own the object. A new URL of that kind
belongs in this table.
"""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from conversations.assistants.icons import store_icon
from conversations.assistants.library import record_version
from conversations.attachments import images, uploads
from conversations.models import (
    Assistant,
    Conversation,
    ConversationMember,
    Message,
    SavedPrompt,
    ShareLink,
)
from conversations.sharing import links

SECRET = "owner's secret plan"


@pytest.fixture
def owned(user):
    """A conversation of `user` with a message, an image, a document and a share link; a
    private assistant with an icon (the conversation's) and a private saved prompt."""
    assistant = Assistant(owner=user, name=SECRET, instructions=SECRET)
    store_icon(assistant, SimpleUploadedFile("i.png", png_bytes()))
    record_version(assistant)
    prompt = SavedPrompt.objects.create(owner=user, command="secret", text=SECRET)
    conversation = Conversation.objects.create(owner=user, title=SECRET, assistant=assistant)
    question = Message.objects.create(conversation=conversation, role="user", text=SECRET)
    answer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", text=SECRET
    )
    image = images.store_upload(user=user, uploaded_file=SimpleUploadedFile("a.png", png_bytes()))
    image.message = question
    image.save(update_fields=["message"])
    document = uploads.store_upload(
        user=user, uploaded_file=SimpleUploadedFile("plan.txt", SECRET.encode())
    )
    document.message = question
    document.save(update_fields=["message"])
    link = links.create_link(conversation=conversation, visibility="team")
    return {
        "c": conversation.pk,
        "m": answer.pk,
        "a": image.pk,
        "d": document.pk,
        "s": link.pk,
        "as": assistant.pk,
        "p": prompt.pk,
    }


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


GETS = [
    "/c/{c}/",
    "/c/{c}/earlier/?before={m}",
    "/c/{c}/export.md",
    "/c/{c}/export.json",
    "/c/{c}/export.zip",
    "/c/{c}/share/",
    "/attachments/{a}/",
    "/attachments/{a}/thumb/",
    "/attachments/{d}/",
    "/attachments/{d}/thumb/",
    "/?assistant={as}",
    "/assistants/{as}/edit/",
    "/assistants/{as}/export.json",
    "/assistants/{as}/icon.png",
    "/prompts/{p}/edit/",
    "/c/{c}/members/",
    "/c/{c}/members/search/?q=ming",
]
POSTS = [
    "/c/{c}/rename/",
    "/c/{c}/delete/",
    "/c/{c}/pin/",
    "/c/{c}/archive/",
    "/c/{c}/share/",
    "/attachments/{a}/delete/",
    "/attachments/{d}/delete/",
    "/shares/{s}/revoke/",
    "/shares/{s}/update/",
    "/c/{c}/without-assistant/",
    "/assistants/{as}/edit/",
    "/assistants/{as}/delete/",
    "/prompts/{p}/edit/",
    "/prompts/{p}/delete/",
    "/c/{c}/members/invite/",
    "/c/{c}/members/1/remove/",
    "/c/{c}/members/leave/",
    "/c/{c}/members/end/",
    "/c/{c}/answer-mode/",
]


@pytest.mark.parametrize("url", GETS)
def test_another_user_gets_404_reading(url, client, owned, other_user):
    client.force_login(other_user)

    response = client.get(url.format(**owned))

    assert response.status_code == 404
    assert SECRET not in response.content.decode(errors="replace")


@pytest.mark.parametrize("url", POSTS)
def test_another_user_gets_404_changing(url, client, owned, other_user):
    client.force_login(other_user)

    response = client.post(
        url.format(**owned),
        {
            "visibility": "public",
            "name": "Mine now",
            "command": "mine",
            "text": "Mine now",
            "user": other_user.pk,
            "answer_mode": "every",
        },
    )

    assert response.status_code == 404
    assert not ConversationMember.objects.exists()
    assistant = Assistant.objects.get(pk=owned["as"])
    assert (assistant.name, assistant.visibility) == (SECRET, "private")
    assert SavedPrompt.objects.get(pk=owned["p"]).text == SECRET
    conversation = Conversation.objects.get(pk=owned["c"])
    assert conversation.assistant_id == owned["as"]
    assert (conversation.title, conversation.pinned, conversation.archived) == (
        SECRET,
        False,
        False,
    )
    assert conversation.answer_mode == "auto"
    assert ShareLink.objects.get(pk=owned["s"]).revoked_at is None


def test_search_never_finds_another_users_messages(client, owned, other_user):
    client.force_login(other_user)

    response = client.get("/search/?q=secret")

    assert SECRET not in response.content.decode()
