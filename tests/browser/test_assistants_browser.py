"""Assistants in Chromium: picked on the new-chat screen, their starter prompt sent, their
name on the header and the answer; a member who lost one continues without it."""

from __future__ import annotations

import pytest

from conversations.assistants.library import record_version
from conversations.models import Assistant, Conversation, Visibility
from tests.support.browser import (
    RECORDER_JS,
    latest_answer_id,
    wait_for_socket,
    wait_for_status,
)


@pytest.fixture
def chat(page, catalogue, make_user, login):
    owner = make_user("olga")
    make_user("ming")
    assistant = Assistant(
        owner=owner,
        name="翻译助手",
        emoji="🌐",
        description="Translates between Chinese and English",
        instructions="Translate what the user writes.",
        visibility=Visibility.TEAM,
        starter_prompts=["把这句话翻译成英文: 你好"],
    )
    record_version(assistant)
    page.add_init_script(RECORDER_JS)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    return page, assistant


def test_a_picked_assistant_answers_its_starter_prompt(chat, artifacts_dir):
    page, assistant = chat
    page.locator(".assistant-pick", has_text="翻译助手").click()
    page.wait_for_url(f"**/?assistant={assistant.pk}")
    assert "翻译助手" in page.locator(".chat-head .assistant-badge").inner_text()
    wait_for_socket(page)

    page.locator("[data-example-prompt]", has_text="你好").click()
    page.locator("#composer-text").press("Enter")
    answer = latest_answer_id(page)
    wait_for_status(page, answer, "complete")

    meta = page.locator(f"article#message-{answer} .message-meta").inner_text()
    assert "翻译助手" in meta
    conversation = Conversation.objects.get(owner__username="ming")
    assert conversation.assistant == assistant
    page.screenshot(path=str(artifacts_dir / "assistant-answer.png"))

    assistant.enabled = False
    assistant.save()
    page.reload()
    wait_for_socket(page)
    page.locator("#composer-text").fill("还有一句")
    page.get_by_role("button", name="Continue without the assistant").click()
    page.locator(".assistant-lost").wait_for(state="detached")
    assert page.locator("#chat-assistant-badge").count() == 0
    assert page.locator("#composer-text").input_value() == "还有一句"  # nothing typed is lost
    conversation.refresh_from_db()
    assert conversation.assistant is None
    assert "翻译助手" in page.locator(f"article#message-{answer} .message-meta").inner_text()
