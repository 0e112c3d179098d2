"""Branches in Chromium: edit a question, regenerate an answer, switch between versions."""

from __future__ import annotations

import re

import pytest

from conversations.models import Conversation, Message
from tests.support.browser import (
    RECORDER_JS,
    STORY,
    add_model,
    body_text,
    latest_answer_id,
    send_message,
    streaming_states,
    wait_for_socket,
    wait_for_status,
)

EDITED = "Tell me a joke"
FOLLOW_UP = "Tell me about cats"


@pytest.fixture
def chat(page, make_user, login):
    """A signed-in chat page on a quick simulator model that still streams visibly."""
    add_model("sim-chat+fault=slow:100", "Sim Chat (quick)", default=True)
    make_user("ming")
    page.add_init_script(RECORDER_JS)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    return page


def ask(page, text: str) -> int:
    """Send `text`, wait until its answer completes, and return the answer's id."""
    before = page.locator("article.message-assistant").count()
    send_message(page, text)
    page.locator("article.message-assistant").nth(before).wait_for()
    answer = latest_answer_id(page)
    wait_for_status(page, answer, "complete")
    return answer


def questions(page) -> list[str]:
    """The questions shown, top to bottom."""
    texts = page.locator("article.message-user .message-body").all_inner_texts()
    return [text.strip() for text in texts]


def position(page, message_id: int) -> str:
    """The branch switcher's "n / m" on a message."""
    switcher = page.locator(f"article#message-{message_id} .branch-position")
    return " ".join(switcher.inner_text().split())


def question_id(page, text: str) -> int:
    """The id of the shown question whose text is `text`."""
    article = page.locator("article.message-user").filter(
        has=page.locator(".message-body", has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))
    )
    return int(article.get_attribute("data-message-id"))


def edit_question(page, message_id: int, text: str) -> None:
    """Open the question's edit form, replace its text and send it."""
    page.locator(f"article#message-{message_id}").get_by_role("button", name="Edit message").click()
    form = page.locator(f"#message-{message_id}-edit")
    form.locator("textarea").fill(text)
    form.get_by_role("button", name="Send").click()


def reload(page) -> None:
    page.reload()
    wait_for_socket(page)


def test_edit_shows_the_new_question_and_a_fresh_answer(chat):
    first_answer = ask(chat, STORY)
    first_question = question_id(chat, STORY)

    edit_question(chat, first_question, EDITED)
    chat.locator(f"article#message-{first_answer}").wait_for(state="detached")
    answer = latest_answer_id(chat)
    wait_for_status(chat, answer, "complete")

    assert questions(chat) == [EDITED]
    assert chat.locator("article.message-assistant").count() == 1
    assert f"“{EDITED}”" in body_text(chat, answer)
    edited = question_id(chat, EDITED)
    assert edited != first_question
    assert position(chat, edited) == "2 / 2"
    assert chat.locator(f"#message-{edited}-edit").is_hidden()
    assert Message.objects.get(pk=edited).parent_id is None
    assert Message.objects.get(pk=answer).parent_id == edited


def test_regenerate_streams_a_new_answer_in_place(chat, artifacts_dir):
    old = ask(chat, STORY)
    old_text = body_text(chat, old)

    chat.locator(f"article#message-{old}").get_by_role("button", name="Regenerate answer").click()
    chat.locator(f"article#message-{old}").wait_for(state="detached")
    new = latest_answer_id(chat)
    wait_for_status(chat, new, "complete")

    assert new != old
    assert streaming_states(chat, new), "the new answer never streamed"
    assert questions(chat) == [STORY]
    assert chat.locator("article.message-assistant").count() == 1
    assert body_text(chat, new) == old_text  # the simulator answers alike
    assert position(chat, new) == "2 / 2"
    question = question_id(chat, STORY)
    assert chat.locator(f"article#message-{question} .branch-switcher").count() == 0
    chat.screenshot(path=str(artifacts_dir / "history-regenerated.png"))

    chat.locator(f"article#message-{new}").get_by_role("button", name="Previous version").click()
    chat.locator(f"article#message-{old}").wait_for()
    assert chat.locator(f"article#message-{new}").count() == 0
    assert position(chat, old) == "1 / 2"
    assert (
        chat.locator(f"article#message-{old}")
        .get_by_role("button", name="Previous version")
        .is_disabled()
    )


def test_switched_branch_is_remembered_and_continued(chat):
    first_answer = ask(chat, STORY)
    first_question = question_id(chat, STORY)
    edit_question(chat, first_question, EDITED)
    chat.locator(f"article#message-{first_answer}").wait_for(state="detached")
    wait_for_status(chat, latest_answer_id(chat), "complete")
    edited = question_id(chat, EDITED)
    assert position(chat, edited) == "2 / 2"

    chat.locator(f"article#message-{edited}").get_by_role("button", name="Previous version").click()
    chat.locator(f"article#message-{first_answer}").wait_for()
    assert questions(chat) == [STORY]
    assert position(chat, first_question) == "1 / 2"

    reload(chat)
    assert questions(chat) == [STORY]
    assert position(chat, first_question) == "1 / 2"
    chat.locator(f"article#message-{first_answer}").wait_for()

    follow_up_answer = ask(chat, FOLLOW_UP)
    assert questions(chat) == [STORY, FOLLOW_UP]

    reload(chat)
    assert questions(chat) == [STORY, FOLLOW_UP]
    assert position(chat, first_question) == "1 / 2"
    assert chat.locator("article.message-assistant").count() == 2
    follow_up = Message.objects.get(pk=follow_up_answer).parent
    assert follow_up.text == FOLLOW_UP and follow_up.parent_id == first_answer
    conversation = Conversation.objects.get(owner__username="ming")
    assert [m.text for m in conversation.visible_branch()][::2] == [STORY, FOLLOW_UP]
