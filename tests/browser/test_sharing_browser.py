"""Sharing in Chromium: the owner shares from the chat page; a teammate continues it."""

from __future__ import annotations

import re

import pytest

from conversations.models import Conversation, ShareLink
from tests.support.browser import (
    RECORDER_JS,
    add_model,
    latest_answer_id,
    send_message,
    wait_for_socket,
    wait_for_status,
)

STORY = "Tell me a story"
FOLLOW_UP = "Tell me another one"


@pytest.fixture
def owner_page(page, make_user, login):
    add_model("sim-chat+fault=slow:400", "Sim Chat (fast)", default=True)
    make_user("ming", first_name="Ming")
    page.add_init_script(RECORDER_JS)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    return page


@pytest.fixture
def teammate_page(browser, make_user, login):
    make_user("lena")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.add_init_script(RECORDER_JS)
    login(page, "lena", "pw-for-tests-123")
    yield page
    context.close()


def share_from_chat(page) -> str:
    """Open the share dialog, create a team link and return its address."""
    page.get_by_role("button", name="Share").click()
    dialog = page.locator("dialog#share-dialog")
    dialog.get_by_role("button", name="Create link").click()
    address = dialog.locator(".share-link input").first
    address.wait_for()
    return address.input_value()


def test_teammate_continues_a_shared_chat(owner_page, teammate_page):
    send_message(owner_page, STORY)
    wait_for_status(owner_page, latest_answer_id(owner_page), "complete")

    address = share_from_chat(owner_page)
    teammate_page.goto(address)
    assert teammate_page.locator("article.message-assistant").count() == 1
    assert "Ming" in teammate_page.locator(".transcript-facts").inner_text()
    teammate_page.get_by_role("button", name="Continue in a new chat").click()
    teammate_page.wait_for_url(re.compile(r".*/c/\d+/$"))
    wait_for_socket(teammate_page)
    send_message(teammate_page, FOLLOW_UP)
    teammate_page.locator("article.message-assistant").nth(1).wait_for()
    wait_for_status(teammate_page, latest_answer_id(teammate_page), "complete")

    link = ShareLink.objects.get()
    assert link.visibility == "team" and address.endswith(f"/s/{link.token}/")
    copy = Conversation.objects.get(owner__username="lena")
    texts = [message.text for message in copy.visible_branch()]
    assert texts[0] == STORY and texts[2] == FOLLOW_UP and len(texts) == 4
    assert copy.visible_branch()[1].response_id == ""
