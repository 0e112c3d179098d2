"""A question's images link to the routes of the page drawing them.

The bubble carries its images with URLs built by the page's own function: the owner's
chat uses the owner-only /attachments/ routes, a shared transcript the link's routes,
which check the link instead. Nothing rewrites rendered HTML afterwards.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations.models import Conversation
from conversations.sharing import links
from tests.support.direct_turns import image
from tests.support.messages import say

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def pictured(user):
    """A conversation whose question carries an image, and that image."""
    conversation = Conversation.objects.create(owner=user, title="Holiday")
    question, _answer = say(conversation, "What is this?", "A cat.")
    picture = image(user)
    picture.message = question
    picture.save()
    return conversation, picture


def test_chat_page_links_images_to_the_owners_routes(client, user, pictured):
    conversation, picture = pictured
    client.force_login(user)

    html = client.get(reverse("conversation", args=[conversation.pk])).content.decode()

    assert f'<a href="{reverse("attachment", args=[picture.pk])}"' in html
    assert f'<img src="{reverse("attachment_thumbnail", args=[picture.pk])}"' in html
    assert 'alt="cat.png"' in html


def test_shared_transcript_links_images_and_thumbnails_through_the_link(client, pictured):
    conversation, picture = pictured
    link = links.create_link(conversation=conversation, visibility="public")

    html = client.get(reverse("shared_transcript", args=[link.token])).content.decode()

    full = reverse("shared_image", args=[link.token, picture.pk])
    thumbnail = reverse("shared_image_thumbnail", args=[link.token, picture.pk])
    assert f'<a href="{full}"' in html and f'<img src="{thumbnail}"' in html
    assert reverse("attachment", args=[picture.pk]) not in html
    assert client.get(thumbnail).status_code == 200
