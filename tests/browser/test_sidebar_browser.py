"""The sidebar follows pins, archives, renames and deletions in every tab, without a script
sweeping it: the server's fragments delete the old link and insert the new one.

Also: a socket the server closes because the account was turned off sends the page to
the sign-in page it names, on a close code it was given.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.history.reads import SIDEBAR_PAGE_SIZE
from conversations.models import Conversation
from tests.support.browser import (
    PASSWORD,
    RECORDER_JS,
    Console,
    add_model,
    sign_in,
    wait_for_socket,
)


@pytest.fixture
def tabs(page, make_user, live_server_ws):
    """Two tabs of one signed-in user, each recording its console errors."""
    add_model("sim-chat", "Sim Chat", default=True)
    user = make_user("ming")
    page.context.add_init_script(RECORDER_JS)
    sign_in(page, live_server_ws.url, "ming", PASSWORD)
    other = page.context.new_page()
    for tab in (page, other):
        tab.console = Console(tab)
    return user, page, other


def open_tab(tab, base: str, path: str = "/") -> None:
    tab.goto(f"{base}{path}")
    wait_for_socket(tab)


def links_to(tab, conversation: Conversation):
    return tab.locator(f"#conversation-list #conversation-link-{conversation.pk}")


def test_pin_archive_and_delete_move_the_link_once_in_every_tab(tabs, live_server_ws):
    user, chat, other = tabs
    both = (chat, other)
    kept = Conversation.objects.create(owner=user, title="Kept")
    moved = Conversation.objects.create(owner=user, title="Moved")
    open_tab(chat, live_server_ws.url, f"/c/{moved.pk}/")
    open_tab(other, live_server_ws.url)
    pinned = [tab.locator("#conversation-list .sidebar-group", has_text="Pinned") for tab in both]
    assert not any(group.is_visible() for group in pinned)

    chat.get_by_role("button", name="Pin", exact=True).click()
    for tab, group in zip(both, pinned, strict=True):
        tab.locator(f"#sidebar-pinned #conversation-link-{moved.pk}").wait_for()
        assert links_to(tab, moved).count() == 1
        assert group.is_visible()
    assert "active" in (links_to(chat, moved).get_attribute("class") or "")
    assert "active" not in (links_to(other, moved).get_attribute("class") or "")

    chat.get_by_role("button", name="Unpin", exact=True).click()
    for tab, group in zip(both, pinned, strict=True):
        tab.locator(f"#sidebar-today #conversation-link-{moved.pk}").wait_for()
        assert links_to(tab, moved).count() == 1
        group.wait_for(state="hidden")

    chat.get_by_role("button", name="Archive", exact=True).click()
    for tab in both:
        links_to(tab, moved).wait_for(state="detached")
    chat.get_by_role("button", name="Unarchive", exact=True).click()
    for tab in both:
        links_to(tab, moved).wait_for()

    chat.once("dialog", lambda dialog: dialog.accept())
    chat.get_by_role("button", name="Delete", exact=True).click()
    chat.wait_for_url(f"{live_server_ws.url}/")
    for tab in both:
        links_to(tab, moved).wait_for(state="detached")
        assert links_to(tab, kept).count() == 1
        assert tab.console.errors == []
    assert not Conversation.objects.filter(pk=moved.pk).exists()


def test_a_link_not_yet_loaded_moves_up_and_is_not_shown_twice(tabs, live_server_ws):
    user, chat, other = tabs
    now = timezone.now()
    made = Conversation.objects.bulk_create(
        Conversation(owner=user, title=f"Chat {i}", updated_at=now - timedelta(days=40, hours=i))
        for i in range(SIDEBAR_PAGE_SIZE + 5)
    )
    oldest = made[-1]
    open_tab(chat, live_server_ws.url, f"/c/{oldest.pk}/")
    open_tab(other, live_server_ws.url)
    assert links_to(other, oldest).count() == 0  # on the sidebar's second page

    chat.get_by_role("button", name="Rename", exact=True).click()
    chat.get_by_label("New name for this conversation").fill("Found again")
    chat.get_by_label("New name for this conversation").press("Enter")
    moved_up = other.locator(f"#sidebar-today #conversation-link-{oldest.pk}")
    moved_up.filter(has_text="Found again").wait_for()
    # The second page, loaded on scroll, holds the same conversation: one link stays.
    other.locator(".sidebar-more").scroll_into_view_if_needed()
    other.locator(".sidebar-more").wait_for(state="detached")
    other.locator(f"#conversation-link-{made[-2].pk}").wait_for()

    assert links_to(other, oldest).count() == 1
    assert other.console.errors == [] and chat.console.errors == []


def test_an_account_turned_off_sends_its_open_chat_to_the_sign_in_page(
    tabs, make_user, browser, live_server_ws
):
    user, chat, _ = tabs
    make_user("boss", is_staff=True, is_superuser=True)
    admin = browser.new_context().new_page()
    admin.add_init_script(RECORDER_JS)
    sign_in(admin, live_server_ws.url, "boss", PASSWORD)

    admin.goto(f"{live_server_ws.url}/admin/auth/user/{user.pk}/change/")
    admin.get_by_label("Active").uncheck()
    admin.get_by_role("button", name="Save", exact=True).click()

    # The socket closes with the code the page was told leads to its sign-in page.
    chat.wait_for_url(re.compile(r"/accounts/login/\?next=%2F$"))
    admin.context.close()


def test_signing_out_in_one_tab_sends_the_other_to_the_sign_in_page(tabs, live_server_ws):
    _, chat, other = tabs
    open_tab(other, live_server_ws.url)

    other.get_by_role("button", name="Sign out").click()
    other.wait_for_url(re.compile(r"/accounts/"))

    # The session's sockets close (4440); the page's reconnect has no session, and the
    # server says so with a close code (4401) rather than refusing the handshake, which a
    # browser reports only as 1006 and the page would retry for ever.
    chat.wait_for_url(re.compile(r"/accounts/login/\?next=%2F$"))
