"""Code copy buttons: the rendered Markdown has no words, the page labels them.

Rendered HTML is cached and shared by readers of every language, so a code block's copy
button is wordless and each page carries its label in its reader's language, for
``static/chatweb/copy.js`` to put on every button as it arrives (the browser tests show
that it does).
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from conversations.models import Conversation
from conversations.rendering.markdown import render_markdown
from conversations.sharing import links
from tests.support.messages import say

pytestmark = pytest.mark.django_db

CODE_ANSWER = "Here:\n\n```python\nprint('hi')\n```\n"
WORDLESS_BUTTON = '<button type="button" class="copy-button"></button>'
ENGLISH = {"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}
CHINESE = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}
ENGLISH_LABELS = 'data-copy-label="Copy" data-copy-aria="Copy code"'
CHINESE_LABELS = 'data-copy-label="复制" data-copy-aria="复制代码"'


def test_rendered_code_block_is_the_same_in_every_language():
    english = render_markdown(CODE_ANSWER)
    with translation.override("zh-hans"):
        chinese = render_markdown(CODE_ANSWER)
    assert english == chinese
    assert WORDLESS_BUTTON in english
    assert "Copy" not in english


@pytest.fixture
def conversation(user) -> Conversation:
    conversation = Conversation.objects.create(owner=user, title="Code")
    say(conversation, "Print hi", CODE_ANSWER)
    return conversation


@pytest.mark.parametrize(
    ("language", "labels", "other"),
    [(ENGLISH, ENGLISH_LABELS, CHINESE_LABELS), (CHINESE, CHINESE_LABELS, ENGLISH_LABELS)],
)
def test_chat_page_labels_copy_buttons_in_the_readers_language(
    client, user, conversation, language, labels, other
):
    client.force_login(user)
    page = client.get(reverse("conversation", args=[conversation.pk]), **language)
    html = page.content.decode()
    assert WORDLESS_BUTTON in html
    assert labels in html
    assert other not in html


@pytest.mark.parametrize(
    ("language", "labels", "other"),
    [(ENGLISH, ENGLISH_LABELS, CHINESE_LABELS), (CHINESE, CHINESE_LABELS, ENGLISH_LABELS)],
)
def test_shared_transcript_labels_copy_buttons_in_the_readers_language(
    client, user, conversation, language, labels, other
):
    link = links.create_link(conversation=conversation, visibility="public", expires="")
    page = client.get(reverse("shared_transcript", args=[link.token]), **language)
    html = page.content.decode()
    assert WORDLESS_BUTTON in html
    assert labels in html
    assert other not in html
