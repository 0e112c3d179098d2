"""Search: substring matching in any script, ownership, snippets and the /search/ page."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from conversations.history import search
from conversations.models import Conversation, Message, ModelChoice

pytestmark = pytest.mark.django_db

SENTENCE = "我们明天去北京旅行，记得带护照和充电器。"  # noqa: RUF001 - Chinese punctuation


def conversation(owner, title: str = "", **fields) -> Conversation:
    return Conversation.objects.create(owner=owner, title=title, **fields)


def message(owner_or_conversation, text: str, *, role: str = "user", **fields) -> Message:
    found = owner_or_conversation
    if not isinstance(found, Conversation):
        found = conversation(owner_or_conversation, "Chat")
    return Message.objects.create(conversation=found, role=role, text=text, **fields)


@pytest.fixture
def client(client, user):
    client.force_login(user)
    return client


# --- Matching ------------------------------------------------------------------------


def test_search_finds_english_word_in_any_case(user):
    found = message(user, "Remember the Kubernetes rollout on Friday")

    results = search.search(user, "kubernetes")

    assert [hit.message for hit in results.messages] == [found]


def test_search_finds_chinese_substring_inside_sentence(user):
    found = message(user, SENTENCE)

    results = search.search(user, "北京旅")

    assert [hit.message for hit in results.messages] == [found]
    assert "<mark>北京旅</mark>" in results.messages[0].snippet


def test_search_finds_chinese_title(user):
    found = conversation(user, "北京旅行计划")

    results = search.search(user, "旅行")

    assert [hit.conversation for hit in results.titles] == [found]
    assert results.titles[0].title == "北京<mark>旅行</mark>计划"


def test_search_never_matches_other_users_conversations(user, other_user):
    message(other_user, "the secret launch codes")
    conversation(other_user, "secret plans")

    assert not search.search(user, "secret")


def test_search_includes_archived_conversations(user):
    archived = conversation(user, "Old budget", archived=True)

    results = search.search(user, "budget")

    assert results.titles[0].conversation.archived
    assert results.titles[0].conversation == archived


def test_search_lists_newest_messages_first(user):
    earlier = timezone.now() - datetime.timedelta(days=2)
    old = message(user, "tea notes", created_at=earlier)
    new = message(user, "more tea notes")

    results = search.search(user, "tea")

    assert [hit.message for hit in results.messages] == [new, old]


def test_search_stops_at_the_limit_and_says_so(user):
    for number in range(3):
        message(user, f"note {number}")

    results = search.search(user, "note", limit=2)

    assert len(results.messages) == 2
    assert results.more


def test_search_treats_like_wildcards_literally(user):
    message(user, "10000 rows")
    found = message(user, "grew 100% this year")

    assert [hit.message for hit in search.search(user, "100%").messages] == [found]


def test_search_empty_query_finds_nothing(user):
    message(user, "anything")

    assert search.search(user, "   ").query == ""
    assert not search.search(user, "   ")


def test_search_takes_two_queries(user, django_assert_num_queries):
    chat = conversation(user, "Tea")
    message(chat, "green tea")
    message(user, "black tea")

    with django_assert_num_queries(2):
        results = search.search(user, "tea")
        [hit.conversation.title for hit in results.messages]


# --- Snippets ------------------------------------------------------------------------


def test_snippet_escapes_html_and_marks_only_the_match():
    text = "<script>alert('x')</script> then the needle"

    html = search.snippet(text, "needle")

    assert html == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; then the <mark>needle</mark>"


def test_snippet_escapes_a_query_that_looks_like_html():
    assert search.snippet("use <b> for bold", "<B>") == "use <mark>&lt;b&gt;</mark> for bold"


def test_snippet_marks_every_match_in_the_window():
    assert search.snippet("Tea, tea, TEA.", "tea").count("<mark>") == 3


def test_snippet_of_long_text_keeps_the_match_in_view():
    text = "x" * 500 + " needle " + "y" * 500

    html = search.snippet(text, "needle")

    assert html.startswith("…") and html.endswith("…")
    assert "<mark>needle</mark>" in html
    assert len(html) < 250


# --- The page ------------------------------------------------------------------------


def test_search_page_renders_full_page_with_results(client, user):
    found = message(user, SENTENCE)

    response = client.get(reverse("search"), {"q": "护照"})

    assert b"<html" in response.content
    assert f"?m={found.pk}#message-{found.pk}" in response.text
    assert "<mark>护照</mark>" in response.text


def test_search_htmx_request_gets_results_partial(client, user):
    found = message(user, "pasta recipe")

    response = client.get(
        reverse("search"), {"q": "pasta"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="chat-main"
    )

    assert b"<html" not in response.content
    assert 'class="chat-head"' in response.text
    assert f'hx-get="/c/{found.conversation_id}/?m={found.pk}"' in response.text


def test_search_page_links_plainly_outside_the_chat(client, user):
    message(user, "pasta recipe")

    response = client.get(reverse("search"), {"q": "pasta"})

    assert "hx-get" not in response.text


def test_search_page_marks_archived_conversations(client, user):
    message(conversation(user, "Old", archived=True), "pasta recipe")

    response = client.get(reverse("search"), {"q": "pasta"}, HTTP_HX_REQUEST="true")

    assert '<span class="badge">archived</span>' in response.text


def test_search_page_names_the_answering_model_by_its_label(client, user):
    ModelChoice.objects.create(upstream_id="sim-chat+fault=slow:6", label="Sim Chat (slow)")
    message(user, "pasta recipe", role="assistant", model_name="sim-chat+fault=slow:6")

    response = client.get(reverse("search"), {"q": "pasta"}, HTTP_HX_REQUEST="true")

    assert '<span title="sim-chat+fault=slow:6">Sim Chat (slow)</span>' in response.text


def test_search_page_escapes_message_html(client, user):
    message(user, "<script>alert(1)</script> pasta")

    response = client.get(reverse("search"), {"q": "pasta"}, HTTP_HX_REQUEST="true")

    assert "<script>alert" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <mark>pasta</mark>" in response.text


def test_search_page_empty_query_explains_itself(client):
    response = client.get(reverse("search"), HTTP_HX_REQUEST="true")

    assert "Search your conversations" in response.text


def test_search_page_says_when_nothing_matches(client):
    response = client.get(reverse("search"), {"q": "<zebra>"}, HTTP_HX_REQUEST="true")

    assert "No matches for “&lt;zebra&gt;”" in response.text


def test_search_page_anonymous_is_sent_to_login(client):
    client.logout()

    response = client.get(reverse("search"), {"q": "x"})

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


# --- PostgreSQL ----------------------------------------------------------------------

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="trigram indexes exist on PostgreSQL only"
)


@postgresql_only
def test_search_trigram_indexes_exist_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm'")
        names = {row[0] for row in cursor.fetchall()}

    assert names == {"message_text_trgm", "conversation_title_trgm"}


@postgresql_only
@pytest.mark.parametrize(
    ("queryset", "index"),
    [
        (Message.objects.filter(text__icontains="北京旅"), "message_text_trgm"),
        (Conversation.objects.filter(title__icontains="trip"), "conversation_title_trgm"),
    ],
)
def test_search_icontains_can_use_the_trigram_index(queryset, index):
    with connection.cursor() as cursor:
        # With so few rows the planner would scan; forbid that to see the index fits
        # the SQL Django writes for icontains.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()

    assert index in plan
