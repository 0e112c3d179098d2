"""The composer's `/` menu in Chromium: Chinese input through an input method, keys, and
placeholders, without ever sending the message."""

from __future__ import annotations

import pytest

from conversations.models import SavedPrompt
from tests.support.browser import RECORDER_JS, SentFrames, wait_for_socket

WEEKLY = "本周完成 {{完成的事}}\n下周计划 {{计划}}"

# When the composition ended, for waiting past chat.js's 50 ms guard. And the line break
# of an Enter pressed while composing is dropped, as a real input method consumes that
# Enter: Chromium's emulated composition (Input.imeSetComposition) lets it through.
IME_JS = """() => {
  const box = document.querySelector('#composer-text');
  let composing = false;
  box.addEventListener('compositionstart', () => { composing = true; });
  box.addEventListener('compositionend', () => {
    composing = false;
    window.__compositionEnded = performance.now();
  });
  box.addEventListener('beforeinput', (event) => {
    if (composing && event.inputType === 'insertLineBreak') event.preventDefault();
  });
}"""

SELECTION_JS = """() => {
  const box = document.querySelector('#composer-text');
  return box.value.slice(box.selectionStart, box.selectionEnd);
}"""


@pytest.fixture
def chat(page, catalogue, make_user, login):
    """ming's chat page; ming has two work-report prompts with Chinese titles and another."""
    ming = make_user("ming")
    SavedPrompt.objects.create(owner=ming, command="daily", title="工作日报", text="今天 {{进展}}")
    SavedPrompt.objects.create(owner=ming, command="weekly", title="工作周报", text=WEEKLY)
    SavedPrompt.objects.create(
        owner=ming, command="translate", title="翻译成英文", text="Translate:"
    )
    page.add_init_script(RECORDER_JS)
    page.sent = SentFrames().attach(page)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    return page


def options(page) -> list[str]:
    return page.locator("#prompt-menu [role=option] .prompt-option-command").all_inner_texts()


def test_slash_menu_filters_by_chinese_and_inserts_with_placeholders(chat, artifacts_dir):
    composer = chat.locator("#composer-text")
    composer.focus()
    chat.keyboard.type("/")
    chat.locator("#prompt-menu [role=listbox]").wait_for()
    assert options(chat) == ["/daily", "/translate", "/weekly"]

    # Pinyin being composed: Enter picks the input method's candidate, nothing else.
    chat.evaluate(IME_JS)
    cdp = chat.context.new_cdp_session(chat)
    cdp.send("Input.imeSetComposition", {"text": "gongzuo", "selectionStart": 7, "selectionEnd": 7})
    chat.keyboard.press("Enter")
    assert composer.input_value().startswith("/gongzuo")
    chat.keyboard.insert_text("工作")  # the input method commits the characters
    chat.wait_for_function("() => performance.now() - window.__compositionEnded > 60")

    assert composer.input_value() == "/工作"
    assert options(chat) == ["/daily", "/weekly"]
    chat.screenshot(path=artifacts_dir / "prompts-menu.png")
    chat.keyboard.press("ArrowDown")
    active = chat.locator("#prompt-menu [aria-selected=true]")
    assert active.locator(".prompt-option-command").inner_text() == "/weekly"
    assert composer.get_attribute("aria-activedescendant") == active.get_attribute("id")
    chat.keyboard.press("Enter")

    assert composer.input_value() == WEEKLY
    assert chat.evaluate(SELECTION_JS) == "{{完成的事}}"
    assert chat.locator("#prompt-menu").count() == 0
    chat.keyboard.press("Tab")
    assert chat.evaluate(SELECTION_JS) == "{{计划}}"
    assert chat.evaluate("() => document.activeElement.id") == "composer-text"
    chat.keyboard.press("Shift+Tab")
    assert chat.evaluate(SELECTION_JS) == "{{完成的事}}"
    chat.keyboard.type("写完测试")
    assert composer.input_value() == WEEKLY.replace("{{完成的事}}", "写完测试")
    assert chat.sent.sends() == []
    assert chat.locator("#messages article.message-user").count() == 0


def test_slash_menu_escape_closes_and_enter_then_sends(chat):
    composer = chat.locator("#composer-text")
    composer.focus()
    chat.keyboard.type("/dai")
    chat.locator("#prompt-menu [role=listbox]").wait_for()
    assert options(chat) == ["/daily"]

    chat.keyboard.press("Escape")
    assert chat.locator("#prompt-menu").count() == 0
    chat.keyboard.type("l")  # the same "/" stays shut
    assert chat.locator("#prompt-menu").count() == 0
    chat.keyboard.press("Enter")

    chat.wait_for_function("() => document.querySelector('#composer-text').value === ''")
    assert [frame["text"] for frame in chat.sent.sends()] == ["/dail"]


def test_slash_menu_opens_only_at_a_word_start_and_a_click_inserts(chat):
    composer = chat.locator("#composer-text")
    composer.focus()
    chat.keyboard.type("a/tr")
    assert chat.locator("#prompt-menu").count() == 0

    chat.keyboard.type(" \uff0f翻")  # a full-width slash, as a Chinese input method types it
    chat.locator("#prompt-menu [role=option]").first.click()

    assert composer.input_value() == "a/tr Translate:"
    assert chat.evaluate("() => document.activeElement.id") == "composer-text"
