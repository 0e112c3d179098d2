"""The sidebar: groups by age, pinned first, keyset pages; pin, archive and delete."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from conversations.groups import membership
from conversations.history import reads
from conversations.models import Conversation
from conversations.pipeline import consumers, fragments


def make_conversations(user, count: int, *, days_ago: int = 0) -> list[Conversation]:
    now = timezone.now() - timedelta(days=days_ago)
    return Conversation.objects.bulk_create(
        Conversation(owner=user, title=f"Chat {i}", updated_at=now - timedelta(seconds=i))
        for i in range(count)
    )


def test_sidebar_groups_conversations_by_age(user):
    make_conversations(user, 1)
    make_conversations(user, 1, days_ago=1)
    make_conversations(user, 1, days_ago=3)
    make_conversations(user, 1, days_ago=100)

    page = reads.sidebar(user)

    assert [label for label, _ in page.groups] == [
        "Today",
        "Yesterday",
        "Previous 7 days",
        "Older",
    ]


def test_sidebar_pages_follow_each_other_without_gaps_or_repeats(user):
    made = make_conversations(user, 120)

    seen, cursor = [], ""
    while True:
        page = reads.sidebar(user, cursor=cursor)
        seen += [c.pk for _, group in page.groups for c in group]
        if not page.next_cursor:
            break
        cursor = page.next_cursor

    assert seen == [c.pk for c in made]


def test_sidebar_page_query_count_does_not_grow(user, make_user, django_assert_max_num_queries):
    make_conversations(user, 300)
    with django_assert_max_num_queries(3):  # pinned, the page, "Shared with me"
        reads.sidebar(user)

    for owner in (make_user(f"owner{n}") for n in range(30)):
        for conversation in make_conversations(owner, 2):
            membership.invite(conversation, owner, [user, make_user(f"m{conversation.pk}")])
    with django_assert_max_num_queries(4):  # and the shared ones' people, all at once
        page = reads.sidebar(user)
    assert len(page.shared) == 50 and all(len(people) == 3 for _, people in page.shared)


def test_pinned_conversations_come_first_and_archived_ones_leave(user):
    old, new = make_conversations(user, 2, days_ago=40)
    Conversation.objects.filter(pk=new.pk).update(pinned=True)
    Conversation.objects.filter(pk=old.pk).update(archived=True)

    page = reads.sidebar(user)

    assert [c.pk for c in page.pinned] == [new.pk]
    assert page.groups == []


def test_pin_and_archive_toggle_from_the_header(client, user):
    client.force_login(user)
    conversation = make_conversations(user, 1)[0]

    client.post(f"/c/{conversation.pk}/pin/")
    client.post(f"/c/{conversation.pk}/archive/")

    conversation.refresh_from_db()
    assert conversation.pinned and conversation.archived
    assert "Chat 0" in client.get("/archive/").content.decode()


def test_delete_archived_removes_only_archived_own_conversations(client, user, other_user):
    client.force_login(user)
    keep, drop = make_conversations(user, 2)
    theirs = make_conversations(other_user, 1)[0]
    Conversation.objects.filter(pk__in=[drop.pk, theirs.pk]).update(archived=True)

    client.post("/archive/delete/")

    assert set(Conversation.objects.values_list("pk", flat=True)) == {keep.pk, theirs.pk}


def test_another_users_conversation_cannot_be_pinned(client, user, other_user):
    client.force_login(user)
    theirs = make_conversations(other_user, 1)[0]

    assert client.post(f"/c/{theirs.pk}/pin/").status_code == 404
    assert client.post(f"/c/{theirs.pk}/archive/").status_code == 404


def test_rename_takes_the_typed_title(client, user):
    client.force_login(user)
    conversation = make_conversations(user, 1)[0]

    client.post(f"/c/{conversation.pk}/rename/", {"title": "  Trip   plans "})

    conversation.refresh_from_db()
    assert conversation.title == "Trip plans"


def test_rename_keeps_chinese_as_typed(client, user):
    client.force_login(user)
    conversation = make_conversations(user, 1)[0]

    client.post(f"/c/{conversation.pk}/rename/", {"title": "长城 笔记"})

    conversation.refresh_from_db()
    assert conversation.title == "长城 笔记"


def test_rename_to_nothing_keeps_the_title(client, user):
    client.force_login(user)
    conversation = make_conversations(user, 1)[0]

    assert client.post(f"/c/{conversation.pk}/rename/", {"title": "   "}).status_code == 400

    conversation.refresh_from_db()
    assert conversation.title == "Chat 0"


def test_delete_removes_the_conversation_and_sends_the_page_to_a_new_chat(client, user):
    client.force_login(user)
    conversation = make_conversations(user, 1)[0]

    response = client.post(f"/c/{conversation.pk}/delete/")

    assert json.loads(response["HX-Location"]) == {"path": "/", "target": "#chat-main"}
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_a_changed_conversation_leaves_its_place_and_comes_back_at_the_top(user):
    conversation = make_conversations(user, 1)[0]
    link = f"conversation-link-{conversation.pk}"

    html = fragments.conversation_changed_html(
        conversation.pk, conversation, active=None, viewer_id=user.pk
    )

    removal = html.index(f'hx-swap-oob="delete:#{link}, #{link}-gone"')
    assert html.index(f'<template id="{link}-gone">') < removal
    assert removal < html.index('hx-swap-oob="afterbegin:#sidebar-today"') < html.index(link + '"')


def test_a_deleted_or_archived_conversation_only_leaves_the_sidebar(user):
    conversation = make_conversations(user, 1)[0]
    conversation.toggle_archived()

    for shown in (conversation, None):
        html = fragments.conversation_changed_html(
            conversation.pk, shown, active=None, viewer_id=user.pk
        )

        assert f'hx-swap-oob="delete:#conversation-link-{conversation.pk}' in html
        assert "afterbegin" not in html


def test_the_chat_page_names_the_sign_in_page_for_the_sockets_refusals(client, user):
    client.force_login(user)

    page = client.get("/").content.decode()

    codes = f"{consumers.CLOSE_UNAUTHENTICATED} {consumers.CLOSE_ACCESS_REVOKED}"
    assert f'data-sign-in-url="/accounts/login/" data-sign-in-codes="{codes}"' in page


def test_another_users_conversation_cannot_be_renamed_or_deleted(client, user, other_user):
    client.force_login(user)
    theirs = make_conversations(other_user, 1)[0]

    assert client.post(f"/c/{theirs.pk}/rename/", {"title": "x"}).status_code == 404
    assert client.post(f"/c/{theirs.pk}/delete/").status_code == 404
    assert Conversation.objects.filter(pk=theirs.pk, title="Chat 0").exists()


def test_archive_dates_read_like_other_pages_and_count_one_in_the_singular(client, user):
    client.force_login(user)
    (conversation,) = make_conversations(user, 1)
    Conversation.objects.filter(pk=conversation.pk).update(
        archived=True, updated_at=datetime(2026, 12, 5, 12, tzinfo=UTC)
    )

    page = client.get("/archive/").content.decode()

    assert ">5 Dec 2026</time>" in page
    assert "Delete 1 archived conversation?" in page


def test_archive_delete_all_counts_several_in_the_plural(client, user):
    client.force_login(user)
    conversations = make_conversations(user, 2)
    Conversation.objects.filter(pk__in=[c.pk for c in conversations]).update(archived=True)

    assert "Delete all 2 archived conversations?" in client.get("/archive/").content.decode()
