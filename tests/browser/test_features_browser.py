"""Answer extras in Chromium: the reasoning section, web search citations, tool steps."""

from __future__ import annotations

import pytest

from conversations.models import Message
from tests.support.browser import (
    RECORDER_JS,
    body_text,
    latest_answer_id,
    send_message,
    wait_for_socket,
    wait_for_status,
)

# Installed beside RECORDER_JS: after each batch of DOM changes it records what the
# latest answer's extras show (thinking section, search steps, tool steps), so a test
# sees the live states however briefly they lasted.
EXTRAS_RECORDER_JS = """
(() => {
  window.__extrasStates = [];
  let last = "";
  const record = () => {
    const articles = document.querySelectorAll("article.message-assistant");
    const article = articles[articles.length - 1];
    if (!article) return;
    const thinking = article.querySelector("details.thinking");
    const state = {
      id: article.id,
      status: (article.className.match(/status-(\\w+)/) || [])[1] || "",
      thinking: thinking ? {
        open: thinking.open,
        summary: thinking.querySelector("summary").textContent.trim(),
        text: thinking.querySelector(".thinking-text").textContent.trim(),
      } : null,
      searches: [...article.querySelectorAll(".search-step")].map(
        (step) => step.textContent.replace(/\\s+/g, " ").trim()),
      tools: [...article.querySelectorAll("details.tool-step summary")].map(
        (summary) => summary.textContent.replace(/\\s+/g, " ").trim()),
    };
    const key = JSON.stringify(state);
    if (key !== last) {
      last = key;
      window.__extrasStates.push(state);
    }
  };
  new MutationObserver(record).observe(document, {
    childList: true, subtree: true, characterData: true, attributes: true,
    attributeFilter: ["class", "open"],
  });
})();
"""


@pytest.fixture
def chat(page, catalogue, make_user, login):
    """A signed-in chat page on the seeded simulator catalogue (Sim Chat is the default)."""
    make_user("ming")
    page.add_init_script(RECORDER_JS)
    page.add_init_script(EXTRAS_RECORDER_JS)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    return page


def extras_states(page, message_id: int) -> list[dict]:
    states = page.evaluate("window.__extrasStates")
    return [state for state in states if state["id"] == f"message-{message_id}"]


def pick_model(page, label: str) -> None:
    """Choose a model in the picker and wait for htmx to swap in its options."""
    with page.expect_response(lambda response: "options" in response.url):
        page.select_option("#composer-model", label=label)
    page.wait_for_function(
        "(label) => { const s = document.querySelector('#composer-model');"
        " return s.options[s.selectedIndex].text === label; }",
        arg=label,
    )


def test_reasoning_streams_open_then_rests_collapsed(chat, artifacts_dir):
    effort = chat.locator("#composer-options select[name=effort]")
    assert effort.count() == 0, "Sim Chat does not reason: no effort picker"
    assert chat.locator("#composer-options select[name=summary]").count() == 0

    pick_model(chat, "Sim Reasoner")
    effort.wait_for()
    assert effort.input_value() == "medium"
    assert [o.strip() for o in effort.locator("option").all_inner_texts()] == [
        "Low effort",
        "Medium effort",
        "High effort",
    ]
    summary = chat.locator("#composer-options select[name=summary]")
    assert summary.input_value() == "auto"
    assert summary.locator("option:checked").inner_text() == "Show thinking"
    effort.select_option("low")

    send_message(chat, "Tell me a story")
    answer = latest_answer_id(chat)
    wait_for_status(chat, answer, "complete")

    live = [
        state["thinking"]
        for state in extras_states(chat, answer)
        if state["status"] == "streaming" and state["thinking"]
    ]
    assert any(
        thinking["open"] and thinking["summary"] == "Thinking…" and thinking["text"]
        for thinking in live
    ), f"never saw the thinking section open while streaming: {live!r}"

    bubble = chat.locator(f"article#message-{answer}")
    thinking = bubble.locator("details.thinking")
    assert thinking.evaluate("(details) => details.open") is False
    assert thinking.locator("summary").inner_text().strip() == "Thought process"
    assert not thinking.locator(".thinking-text").is_visible()
    thinking.locator("summary").click()
    assert thinking.locator(".thinking-text").is_visible()
    assert "Understanding the question" in thinking.locator(".thinking-text").inner_text()

    saved = Message.objects.get(pk=answer)
    assert saved.reasoning_effort == "low" and saved.reasoning_tokens
    assert bubble.locator(".message-meta .badge").inner_text() == "low effort"
    tokens = bubble.locator(".token-count").inner_text()
    assert f"({saved.reasoning_tokens} reasoning)" in tokens, tokens
    assert f"{saved.output_tokens} out" in tokens, tokens
    chat.screenshot(path=str(artifacts_dir / "features-thinking.png"))

    pick_model(chat, "Sim Mini")
    assert effort.count() == 0, "the effort picker stays after switching to Sim Mini"


def test_web_search_answer_cites_numbered_sources(chat):
    chat.get_by_label("Search the web").check()
    send_message(chat, "Look up htmx")
    answer = latest_answer_id(chat)
    wait_for_status(chat, answer, "complete")

    searches = [
        step
        for state in extras_states(chat, answer)
        if state["status"] == "streaming"
        for step in state["searches"]
    ]
    assert any(step.startswith("Searching the web") for step in searches), searches
    bubble = chat.locator(f"article#message-{answer}")
    step = bubble.locator(".search-step")
    assert " ".join(step.inner_text().split()) == "Searched the web for “htmx”"

    sources = bubble.locator(".sources ol li")
    assert sources.count() == 2
    expected = [
        "https://en.example.org/wiki/htmx",
        "https://news.example.com/search?q=htmx",
    ]
    for number, url in enumerate(expected, start=1):
        item = sources.nth(number - 1)
        assert item.get_attribute("value") == str(number)
        link = item.locator("a")
        assert link.get_attribute("href") == url
        assert link.get_attribute("target") == "_blank"
        assert link.get_attribute("rel") == "noopener noreferrer"
        assert "htmx" in link.inner_text()

    inline = bubble.locator(f"#message-{answer}-body a")
    assert [text.strip() for text in inline.all_inner_texts()] == ["[1]", "[2]"]
    for index, url in enumerate(expected):
        link = inline.nth(index)
        assert link.get_attribute("href") == url
        assert link.get_attribute("target") == "_blank"
        assert link.get_attribute("rel") == "noopener noreferrer"
    assert Message.objects.get(pk=answer).web_search is True


def test_tool_step_shows_the_calculation(chat):
    send_message(chat, "What is 12*7?")
    answer = latest_answer_id(chat)
    wait_for_status(chat, answer, "complete")

    live_steps = [
        step
        for state in extras_states(chat, answer)
        if state["status"] == "streaming"
        for step in state["tools"]
    ]
    assert any(step.startswith("Used calculate") for step in live_steps), live_steps
    bubble = chat.locator(f"article#message-{answer}")
    step = bubble.locator("details.tool-step")
    assert step.count() == 1
    assert step.locator("summary code").inner_text() == "calculate"
    assert " ".join(step.locator("summary").inner_text().split()).startswith("Used calculate")
    assert step.evaluate("(details) => details.open") is False
    io = step.locator(".tool-io")
    assert not io.is_visible()

    step.locator("summary").click()
    assert io.is_visible()
    arguments, result = io.locator("pre").all_inner_texts()
    assert "12" in arguments and "7" in arguments, arguments
    assert "84" in result, result
    assert "84" in body_text(chat, answer)
    assert "error" not in step.get_attribute("class")
