"""search_conversations: the asking user's own history only, any language, never this chat."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from conversations.models import Conversation, Message
from conversations.tools import ToolContext, run_call
from conversations.tools.search import snippet

pytestmark = pytest.mark.django_db


def chat(owner, title: str = "", *texts: str, day: int = 1) -> Conversation:
    conversation = Conversation.objects.create(
        owner=owner, title=title, updated_at=datetime(2025, 5, day, 12, tzinfo=UTC)
    )
    for text in texts:
        Message.objects.create(conversation=conversation, role="user", text=text)
    return conversation


def search(user, query: str, limit: int = 10, current: int | None = None) -> list[dict]:
    arguments = json.dumps({"query": query, "limit": limit})
    result = run_call("search_conversations", arguments, ToolContext(user, current))
    assert result.ok, result.output
    return json.loads(result.output)


def test_search_finds_message_text(user):
    found = chat(user, "Trip", "Where should we eat in Lisbon?", "Try the pastéis in Belém.")
    assert search(user, "lisbon") == [
        {
            "conversation_id": found.pk,
            "title": "Trip",
            "snippet": "Where should we eat in Lisbon?",
            "date": "2025-05-01",
        }
    ]


def test_search_matches_title_and_shows_how_it_began(user):
    chat(user, "Tax return 2024", "What can I deduct?")
    assert search(user, "TAX")[0]["snippet"] == "What can I deduct?"


def test_search_chinese_substring(user):
    found = chat(user, "", "我们昨天讨论了机器学习的基本概念")
    chat(user, "", "今天天气很好")
    (result,) = search(user, "学习")
    assert result["conversation_id"] == found.pk and "学习" in result["snippet"]


def test_search_untitled_conversation_gets_its_display_name(user):
    found = chat(user, "", "kumquat")
    assert search(user, "kumquat")[0]["title"] == f"Conversation {found.pk}"


def test_search_never_returns_another_users_conversations(user, other_user):
    chat(other_user, "secret plans", "the secret is 42")
    mine = chat(user, "", "no secret here")
    assert [r["conversation_id"] for r in search(user, "secret")] == [mine.pk]
    assert search(other_user, "no secret here") == []


def test_search_excludes_the_current_conversation(user):
    current = chat(user, "", "banana bread")
    older = chat(user, "", "banana split")
    assert [r["conversation_id"] for r in search(user, "banana", current=current.pk)] == [older.pk]


def test_search_newest_first_within_limit(user):
    ids = [chat(user, "", f"note {day}", day=day).pk for day in (1, 3, 2)]
    assert [r["conversation_id"] for r in search(user, "note", limit=2)] == [ids[1], ids[2]]


def test_search_one_result_per_conversation(user):
    chat(user, "apple", "apple pie", "apple tart")
    assert len(search(user, "apple")) == 1


def test_search_treats_wildcards_literally(user):
    chat(user, "", "growth of 1000 units")
    assert search(user, "100%") == [] and search(user, "1_00") == []


def test_search_inactive_or_missing_user_sees_nothing(user):
    chat(user, "", "hello")
    user.is_active = False
    assert search(user, "hello") == [] and search(None, "hello") == []


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"query": "x", "limit": "3"}, "limit must be integer, not string"),
        ({"query": "x"}, "missing required property 'limit'"),
        ({"query": "  ", "limit": 3}, "the query is empty"),
        ({"query": "x" * 201, "limit": 3}, "the query is longer than 200 characters"),
    ],
)
def test_search_bad_arguments(user, arguments, error):
    result = run_call("search_conversations", json.dumps(arguments), ToolContext(user))
    assert not result.ok and error in json.loads(result.output)["error"]


def test_snippet_centres_on_the_match():
    text = "a" * 300 + " needle " + "b" * 300
    assert snippet(text, "NEEDLE") == "…" + "a" * 49 + " needle " + "b" * 103 + "…"


def test_snippet_without_match_shows_the_start():
    assert snippet("line one\n\n  line two", "zzz") == "line one line two"


@pytest.mark.parametrize(("limit", "found"), [(0, 1), (-3, 1), (50, 3)])
def test_search_moves_an_out_of_range_limit_into_range(user, limit, found):
    for day in (1, 2, 3):
        chat(user, "", "kumquat jam", day=day)
    assert len(search(user, "kumquat", limit=limit)) == found
