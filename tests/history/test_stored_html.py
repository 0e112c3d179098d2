"""A finished message's HTML is stored once and read back, and a new renderer renders again.

Pages show the HTML stored with the message (`Message.rendered_html`) when the renderer
that made it is the current one (`rendered_version`); an older or missing version is
rendered again on the first read and stored by one UPDATE that writes nothing else.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.history import reads
from conversations.models import Conversation, Message
from conversations.pipeline import fragments
from conversations.rendering import stored, version
from tests.support.direct_turns import finish, send
from tests.support.messages import say

pytestmark = pytest.mark.django_db

# HTML no renderer makes from these texts: seeing it proves the page read the column.
STORED_MARK = '<p class="stored-mark">from the column</p>'


def page(client, conversation_id: int) -> str:
    """Return the chat page's transcript: the part that shows the messages."""
    html = client.get(f"/c/{conversation_id}/").content.decode()
    return html[html.index('<div id="messages"') : html.index('<form id="composer"')]


def row(message_id: int) -> Message:
    return Message.objects.get(pk=message_id)


def updates_of_messages(statements: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in statements.captured_queries
        if query["sql"].startswith("UPDATE") and '"conversations_message"' in query["sql"]
    ]


def test_finished_turn_stores_the_html_of_question_and_answer(user, catalogue):
    result = send(user, text="Is <b>this</b> bold?")

    finish(result.plan, text="**Yes**, it is.")

    question, answer = row(result.plan.user_message_id), row(result.plan.answer_id)
    assert (
        question.rendered_html == '<div class="plain-text">Is &lt;b&gt;this&lt;/b&gt; bold?</div>'
    )
    assert "<strong>Yes</strong>" in answer.rendered_html
    assert question.rendered_version == answer.rendered_version == version.RENDERER_VERSION


def test_streaming_answer_has_no_stored_html_until_it_ends(client, user, catalogue):
    result = send(user, text="Tell me")
    client.force_login(user)

    page(client, result.conversation.pk)

    answer = row(result.plan.answer_id)
    assert (answer.rendered_html, answer.rendered_version) == ("", None)


def test_page_shows_the_stored_html_without_rendering_again(client, user):
    conversation = Conversation.objects.create(owner=user)
    _question, answer = say(conversation, "Hi", "**Hello**")
    Message.objects.filter(pk=answer.pk).update(
        rendered_html=STORED_MARK, rendered_version=version.RENDERER_VERSION
    )
    client.force_login(user)

    html = page(client, conversation.pk)

    assert STORED_MARK in html
    assert "<strong>Hello</strong>" not in html


def test_message_stored_before_html_was_kept_is_rendered_once_then_read(client, user):
    conversation = Conversation.objects.create(owner=user)
    question, answer = say(conversation, "Hi", "**Hello**")
    client.force_login(user)

    with CaptureQueriesContext(connection) as first:
        first_html = page(client, conversation.pk)
    with CaptureQueriesContext(connection) as second:
        second_html = page(client, conversation.pk)

    assert "<strong>Hello</strong>" in first_html
    assert first_html == second_html
    assert len(updates_of_messages(first)) == 1  # both rows filled by one statement
    assert updates_of_messages(second) == []
    assert "<strong>Hello</strong>" in row(answer.pk).rendered_html
    assert row(question.pk).rendered_version == version.RENDERER_VERSION


def test_new_renderer_version_renders_again_and_stores_only_the_html(
    client, user, catalogue, monkeypatch
):
    result = send(user, text="Hi")
    finish(result.plan, text="**Hello**")
    Message.objects.filter(pk=result.plan.answer_id).update(rendered_html=STORED_MARK)
    before = row(result.plan.answer_id)
    client.force_login(user)
    assert STORED_MARK in page(client, result.conversation.pk)

    monkeypatch.setattr(version, "RENDERER_VERSION", version.RENDERER_VERSION + 1)
    html = page(client, result.conversation.pk)

    after = row(result.plan.answer_id)
    assert STORED_MARK not in html and "<strong>Hello</strong>" in html
    assert after.rendered_version == version.RENDERER_VERSION
    assert "<strong>Hello</strong>" in after.rendered_html
    # A cache fill: the answer's other columns, its activity time included, are untouched.
    assert (after.updated_at, after.text, after.status) == (
        before.updated_at,
        before.text,
        before.status,
    )


def test_older_renderer_does_not_overwrite_what_a_newer_one_stored(client, user):
    conversation = Conversation.objects.create(owner=user)
    _question, answer = say(conversation, "Hi", "**Hello**")
    newer = version.RENDERER_VERSION + 1
    Message.objects.filter(pk=answer.pk).update(rendered_html=STORED_MARK, rendered_version=newer)
    client.force_login(user)

    html = page(client, conversation.pk)

    assert "<strong>Hello</strong>" in html  # this process shows what it renders itself
    assert (row(answer.pk).rendered_html, row(answer.pk).rendered_version) == (STORED_MARK, newer)


def test_html_is_stored_only_on_the_text_it_was_made_from(user):
    conversation = Conversation.objects.create(owner=user)
    _question, answer = say(conversation, "Hi", "First words")
    loaded = row(answer.pk)
    Message.objects.filter(pk=answer.pk).update(text="Other words")

    stored.html_of([loaded])

    assert (row(answer.pk).rendered_html, row(answer.pk).rendered_version) == ("", None)


def test_bubble_shows_the_citations_of_the_stored_answer(user, catalogue):
    result = send(user, text="Sources?")
    cited = "[example.org](https://example.org/a)"
    text = f"See ({cited}) for more."
    start = text.index(cited)
    citation = {
        "url": "https://example.org/a",
        "title": "Example",
        "start_index": start,
        "end_index": start + len(cited),
    }
    Message.objects.filter(pk=result.plan.answer_id).update(
        text=text, citations=[citation], status=Message.Status.COMPLETE
    )

    html = fragments.message_html(reads.message(user, result.plan.answer_id))

    rendered = row(result.plan.answer_id).rendered_html
    assert ">[1]</a> for more." in rendered and "example.org</a>" not in rendered
    assert rendered in html


@pytest.mark.django_db(transaction=True)
async def test_socket_resync_of_old_messages_stores_them_off_the_event_loop(user):
    conversation = await sync_to_async(Conversation.objects.create)(owner=user)
    _question, answer = await sync_to_async(say)(conversation, "Hi", "**Hello**")

    # As the consumer does: read in a database thread, draw on the event loop, where
    # any query would raise SynchronousOnlyOperation.
    view = await sync_to_async(reads.transcript)(user, conversation.pk)
    html = fragments.transcript_html(view)

    assert "<strong>Hello</strong>" in html
    filled = await sync_to_async(row)(answer.pk)
    assert filled.rendered_version == version.RENDERER_VERSION
