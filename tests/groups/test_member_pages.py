"""The pages of a group conversation over HTTP: what a member may do, what only the owner
may, and what a removed member or a stranger gets (404, learning nothing)."""

from __future__ import annotations

from html import unescape

import pytest

from conversations.groups import membership
from conversations.history import reads
from conversations.models import (
    Conversation,
    ConversationMember,
    MembershipEvent,
    Message,
    ShareLink,
)
from conversations.pipeline import fragments

SECRET = "the group's plan"


@pytest.fixture
def group(user, make_user):
    mei = make_user("mei", first_name="Mei", last_name="Lin")
    conversation = Conversation.objects.create(owner=user, title=SECRET)
    question = Message.objects.create(
        conversation=conversation, role="user", text="first", author=mei
    )
    Message.objects.create(
        conversation=conversation, parent=question, role="assistant", text=SECRET
    )
    membership.invite(conversation, user, [mei])
    conversation.refresh_from_db()
    return conversation, mei


MEMBER_READS = ["/c/{c}/", "/c/{c}/members/"]
OWNER_ONLY_GETS = [
    "/c/{c}/share/",
    "/c/{c}/export.md",
    "/c/{c}/export.json",
    "/c/{c}/members/search/?q=m",
]
OWNER_ONLY_POSTS = [
    "/c/{c}/rename/",
    "/c/{c}/delete/",
    "/c/{c}/pin/",
    "/c/{c}/archive/",
    "/c/{c}/share/",
    "/c/{c}/without-assistant/",
    "/c/{c}/members/invite/",
    "/c/{c}/members/{u}/remove/",
    "/c/{c}/members/end/",
    "/c/{c}/answer-mode/",
]


@pytest.mark.parametrize("url", MEMBER_READS)
def test_a_member_reads_the_conversation_and_its_people(url, client, group):
    conversation, mei = group
    client.force_login(mei)

    response = client.get(url.format(c=conversation.pk, u=mei.pk))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Mei Lin" in page and "ming" in page


def test_the_chat_page_names_each_questions_writer_and_lists_the_members(client, group):
    conversation, mei = group
    client.force_login(mei)

    page = unescape(client.get(f"/c/{conversation.pk}/").content.decode())

    assert 'class="message-author"' in page and ">ML<" in page
    assert 'id="group-bar"' in page
    assert "Only the conversation's owner changes its instructions." in page
    # The owner's buttons are not offered to a member.
    assert f"/c/{conversation.pk}/delete/" not in page
    assert f"/c/{conversation.pk}/share/" not in page


@pytest.mark.parametrize("url", OWNER_ONLY_GETS)
def test_a_member_cannot_open_what_only_the_owner_may(url, client, group):
    conversation, mei = group
    client.force_login(mei)

    assert client.get(url.format(c=conversation.pk, u=mei.pk)).status_code == 404


@pytest.mark.parametrize("url", OWNER_ONLY_POSTS)
def test_a_member_cannot_change_what_only_the_owner_may(url, client, group, make_user):
    conversation, mei = group
    newcomer = make_user("newcomer")
    client.force_login(mei)

    response = client.post(
        url.format(c=conversation.pk, u=mei.pk),
        {"title": "Mine", "visibility": "team", "user": newcomer.pk, "answer_mode": "every"},
    )

    assert response.status_code == 404
    conversation.refresh_from_db()
    assert (conversation.title, conversation.answer_mode, conversation.archived) == (
        SECRET,
        "auto",
        False,
    )
    assert list(conversation.members.values_list("user__username", flat=True)) == ["mei"]
    assert not ShareLink.objects.exists()


def test_a_removed_member_and_a_stranger_learn_nothing(client, group, make_user):
    conversation, mei = group
    stranger = make_user("stranger")
    membership.remove(conversation, conversation.owner, mei.pk)

    for outsider in (mei, stranger):
        client.force_login(outsider)
        for url in (*MEMBER_READS, "/c/{c}/members/leave/"):
            method = client.post if url.endswith("leave/") else client.get
            response = method(url.format(c=conversation.pk, u=mei.pk))
            assert response.status_code == 404
            assert SECRET not in response.content.decode(errors="replace")
        sidebar = client.get("/").content.decode()
        assert SECRET not in sidebar


def test_shared_with_me_lists_the_group_with_its_peoples_initials(client, group):
    _, mei = group
    client.force_login(mei)

    page = unescape(client.get("/").content.decode())

    shared = page[page.index('id="sidebar-shared"') : page.index('id="sidebar-today"')]
    assert SECRET in shared and ">M<" in shared and ">ML<" in shared


def test_the_owner_invites_by_search_then_removes_and_ends(client, group, make_user):
    conversation, _ = group
    li = make_user("li", first_name="Li", last_name="Wei")
    client.force_login(conversation.owner)

    found = client.get(f"/c/{conversation.pk}/members/search/?q=wei").content.decode()
    assert "Li Wei" in found and "Mei Lin" not in found
    panel = client.post(f"/c/{conversation.pk}/members/invite/", {"user": li.pk})
    assert "Li Wei" in panel.content.decode()
    client.post(f"/c/{conversation.pk}/members/{li.pk}/remove/")
    client.post(f"/c/{conversation.pk}/members/end/")

    conversation.refresh_from_db()
    assert not conversation.is_group and not ConversationMember.objects.exists()
    kinds = list(MembershipEvent.objects.order_by("pk").values_list("kind", flat=True))
    assert kinds == ["invited", "invited", "removed", "ended"]


def test_inviting_a_deactivated_account_says_so_and_adds_nobody(client, group, make_user):
    conversation, _ = group
    gone = make_user("gone", is_active=False)
    client.force_login(conversation.owner)

    panel = client.post(f"/c/{conversation.pk}/members/invite/", {"user": gone.pk})

    assert "gone cannot join: the account is deactivated." in panel.content.decode()
    assert conversation.members.count() == 1


def test_a_member_leaves_and_the_first_visit_is_logged(client, group):
    conversation, mei = group
    client.force_login(mei)

    client.get(f"/c/{conversation.pk}/")
    client.get(f"/c/{conversation.pk}/")
    response = client.post(f"/c/{conversation.pk}/members/leave/")

    assert response.headers["HX-Redirect"] == "/"
    kinds = list(MembershipEvent.objects.order_by("pk").values_list("kind", flat=True))
    assert kinds == ["invited", "joined", "left"]
    assert client.get(f"/c/{conversation.pk}/").status_code == 404


def test_the_owner_picks_when_the_model_answers(client, group):
    conversation, _ = group
    client.force_login(conversation.owner)

    client.post(f"/c/{conversation.pk}/answer-mode/", {"answer_mode": "mentioned"})
    refused = client.post(f"/c/{conversation.pk}/answer-mode/", {"answer_mode": "never"})

    conversation.refresh_from_db()
    assert conversation.answer_mode == "mentioned"
    assert "Choose when the model answers." in refused.content.decode()


def test_a_change_to_the_group_redraws_the_group_bar_of_an_open_page(group, make_user):
    conversation, mei = group
    li = make_user("li", first_name="Li", last_name="Wei")
    membership.invite(conversation, conversation.owner, [li])

    shown, people = reads.sidebar_entry(mei, conversation.pk)
    html = fragments.conversation_changed_html(
        conversation.pk, shown, active=conversation.pk, viewer_id=mei.pk, people=people
    )
    bar = html[html.index('id="group-bar"') :]
    assert 'hx-swap-oob="true"' in bar[:200] and ">LW<" in bar
    assert "when someone writes @model" in bar

    membership.end_group(conversation, conversation.owner)
    shown, people = reads.sidebar_entry(conversation.owner, conversation.pk)
    html = fragments.conversation_changed_html(
        conversation.pk,
        shown,
        active=conversation.pk,
        viewer_id=conversation.owner_id,
        people=people,
    )
    bar = html[html.index('id="group-bar"') :]
    assert bar.index("hidden") < bar.index(">") and ">ML<" not in bar
