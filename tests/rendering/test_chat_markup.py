"""What the chat page's markup shows: image-only questions, the favicon, the title."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from conversations.attachments import images
from conversations.history import reads
from conversations.models import Conversation, Message
from conversations.pipeline import fragments
from conversations.sharing import links

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def image_only_question(user) -> Message:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (40, 90, 60)).save(buffer, "PNG")
    upload = SimpleUploadedFile("photo.png", buffer.getvalue(), content_type="image/png")
    picture = images.store_upload(user=user, uploaded_file=upload)
    conversation = Conversation.objects.create(owner=user, title="Photo")
    question = Message.objects.create(conversation=conversation, role="user", text="")
    picture.message = question
    picture.save()
    return question


def test_image_only_question_shows_the_image_and_no_empty_text_bubble(user):
    question = image_only_question(user)

    html = fragments.message_html(reads.message(user, question.pk))

    assert 'alt="photo.png"' in html
    assert f'id="message-{question.pk}-body"' not in html


def test_image_only_question_on_the_shared_page_has_no_empty_text_bubble(client, user):
    question = image_only_question(user)
    link = links.create_link(conversation=question.conversation, visibility="public")

    html = client.get(f"/s/{link.token}/").content.decode()

    assert "photo.png" in html
    assert f'id="message-{question.pk}-body"' not in html


def test_favicon_is_a_real_icon_for_anyone(client):
    response = client.get("/favicon.ico", follow=True)

    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"


def test_renamed_archived_conversation_on_screen_gets_its_new_title(user):
    conversation = Conversation.objects.create(owner=user, title="Renamed", archived=True)

    html = fragments.conversation_changed_html(
        conversation.pk, conversation, active=conversation.pk, viewer_id=user.pk
    )

    assert 'id="conversation-title"' in html and "Renamed" in html
