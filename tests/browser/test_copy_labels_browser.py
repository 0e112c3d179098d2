"""Code copy buttons get their label from the page, in the reader's language.

The rendered Markdown's buttons have no words (the HTML is shared by readers of every
language); copy.js labels each one as it arrives. A screen reader must find it by its
translated name whether the block streamed in over the socket or came with the page.
"""

from __future__ import annotations

import pytest

from tests.support.browser import (
    RECORDER_JS,
    add_model,
    latest_answer_id,
    send_message,
    wait_for_socket,
    wait_for_status,
)

CODE = "Show me Python code to count words in a file"
UNLABELLED = ".copy-button:not([aria-label])"


@pytest.fixture
def chinese_page(browser, transactional_db, monkeypatch, make_user, live_server_ws):
    """A signed-in chat page in a browser that asks for Chinese (no saved preference)."""
    # Playwright's sync API keeps an event loop in this thread (see the `page` fixture).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    add_model("sim-chat+fault=slow:100", "Sim Chat (slow 100)", default=True)
    make_user("ming")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.add_init_script(RECORDER_JS)
    page.goto(f"{live_server_ws.url}/accounts/login/")
    page.fill("input[name=username]", "ming")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{live_server_ws.url}/")
    yield page
    context.close()


def test_code_copy_buttons_are_labelled_in_the_readers_language(chinese_page):
    page = chinese_page
    wait_for_socket(page)
    assert page.evaluate("document.documentElement.lang") == "zh-hans"

    send_message(page, CODE)
    answer = latest_answer_id(page)
    # Streamed in: labelled as soon as the block is on the page.
    streamed = page.locator(f"#message-{answer} .code-block").first.get_by_role(
        "button", name="复制代码"
    )
    streamed.wait_for()
    assert streamed.inner_text() == "复制"
    wait_for_status(page, answer, "complete")
    assert page.locator(f"#message-{answer} .copy-button").count() >= 1
    assert page.locator(UNLABELLED).count() == 0

    # Came with the page.
    page.reload()
    wait_for_socket(page)
    loaded = page.locator(f"#message-{answer} .code-block").first.get_by_role(
        "button", name="复制代码"
    )
    assert loaded.inner_text() == "复制"
    assert page.locator(UNLABELLED).count() == 0
