"""The chat page in Chromium against a real Daphne: streaming, reload, stop, composer, copy."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from conversations.models import Conversation, Message
from tests.support.browser import (
    RECORDER_JS,
    STORY,
    STORY_ANSWER,
    SentFrames,
    add_model,
    body_text,
    folded,
    latest_answer_id,
    question_text,
    rendered_text,
    repeated_lines,
    send_message,
    streaming_states,
    wait_for_live_text,
    wait_for_socket,
    wait_for_status,
)

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "chat.png"

CODE = "Show me Python code to count words in a file"
CODE_TITLE = "Count Words File"


@pytest.fixture
def chat(page, make_user, login):
    """A signed-in chat page; its socket frames and answer bubbles are recorded.

    The catalogue holds the simulator's chat model at its usual pace, a fast default and
    slow variants (tokens per second) for watching a stream.
    """
    add_model("sim-chat+fault=slow:400", "Sim Chat (fast)", default=True)
    add_model("sim-chat", "Sim Chat", position=1)
    for pace in (8, 20, 40, 100):
        add_model(f"sim-chat+fault=slow:{pace}", f"Sim Chat (slow {pace})", position=2)
    make_user("ming")
    page.add_init_script(RECORDER_JS)
    sent = SentFrames().attach(page)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    page.sent = sent
    return page


def final_text(page, message_id: int) -> str:
    """What the finished bubble must show: the saved answer, rendered by the app."""
    return rendered_text(page, Message.objects.get(pk=message_id).text)


def test_answer_streams_into_the_bubble(chat):
    send_message(chat, STORY, model="Sim Chat (slow 20)")
    answer = latest_answer_id(chat)
    wait_for_status(chat, answer, "complete")

    assert question_text(chat) == STORY
    final = body_text(chat, answer)
    assert final == final_text(chat, answer) == STORY_ANSWER
    live = list(dict.fromkeys(state.live_text for state in streaming_states(chat, answer)))
    for text in live:
        assert final.startswith(text), text
    partial = [text for text in live if text != final]
    assert len(partial) >= 2, f"saw only {live!r} before the answer completed"
    assert Message.objects.get(pk=answer).status == "complete"


def test_reload_mid_stream_continues_without_duplicates(chat):
    send_message(chat, CODE, model="Sim Chat (slow 40)")
    answer = latest_answer_id(chat)
    # Reload once the heading is a finished block, so the reloaded page must join a
    # stream that already committed blocks and keep appending to them.
    chat.wait_for_function(
        f"() => document.querySelector('#message-{answer}-blocks')?.innerText.trim()"
    )
    conversation = Message.objects.get(pk=answer).conversation_id
    chat.wait_for_url(re.compile(rf"/c/{conversation}/$"))

    chat.reload()
    wait_for_socket(chat)
    wait_for_status(chat, answer, "complete")

    final = body_text(chat, answer)
    assert final == final_text(chat, answer)
    # From the snapshot on: what the page shows between the resync and the snapshot is
    # test_rejoining_gets_the_snapshot_before_any_delta's business.
    after_reload = [state for state in streaming_states(chat, answer) if state.snapshots]
    seen = [state.live_text for state in after_reload]
    assert len(set(seen)) >= 2, f"the reloaded page did not show the stream go on: {seen}"
    full = chat.locator(f"#message-{answer}-body").inner_text()
    shown = "\n".join(f"{state.blocks!r} + {state.tail!r}" for state in after_reload)
    for state in after_reload:
        assert final.startswith(folded(state.blocks or "")), f"a gap in:\n{shown}"
        assert not repeated_lines(f"{state.blocks}\n{state.tail}", full), f"repeats in:\n{shown}"
    assert chat.locator(f"article#message-{answer}").count() == 1
    assert chat.locator("article.message-user").count() == 1


def test_rejoining_gets_the_snapshot_before_any_delta(chat):
    send_message(chat, CODE, model="Sim Chat (slow 100)")
    answer = latest_answer_id(chat)
    wait_for_live_text(chat, answer)
    conversation = Message.objects.get(pk=answer).conversation_id
    snapshot = f'id="message-{answer}-body" class="message-body markdown" hx-swap-oob="true"'
    final = f'<article id="message-{answer}" class="message message-assistant status-'

    # Watch the conversation again each time its snapshot arrives, as a page that
    # reloads or reconnects does, collecting every frame, until the answer is final.
    frames = chat.evaluate(
        """([conversation, snapshot, final, rounds]) => new Promise((resolve) => {
            const frames = [];
            const watch = () => window.__socket.send(
                JSON.stringify({ action: "watch", conversation: String(conversation) }));
            document.addEventListener("htmx:wsBeforeMessage", (event) => {
                const message = String(event.detail.message);
                frames.push(message);
                const done = message.includes(final) && !message.includes("status-streaming");
                if (done || frames.length > 500) resolve(frames);
                else if (message.includes(snapshot) && rounds-- > 0) watch();
            });
            watch();
        })""",
        [conversation, snapshot, final, 12],
    )

    rejoins = [
        index
        for index, frame in enumerate(frames)
        if 'id="messages" hx-swap-oob' in frame and f"{final}streaming" in frame
    ]
    assert len(rejoins) >= 5, "the answer finished before the page could rejoin it often"
    for start in rejoins:
        first = next((frame for frame in frames[start + 1 :] if f"message-{answer}-" in frame), "")
        assert snapshot in first or final in first, (
            f"after rejoining, the page got this before the snapshot: {first!r}"
        )


def test_stop_keeps_the_partial_answer(chat):
    send_message(chat, STORY, model="Sim Chat (slow 8)")
    answer = latest_answer_id(chat)
    wait_for_live_text(chat, answer)

    chat.locator(f"#message-{answer}").get_by_role("button", name="Stop").click()
    wait_for_status(chat, answer, "cancelled")

    saved = Message.objects.get(pk=answer)
    assert saved.status == "cancelled"
    shown = body_text(chat, answer)
    assert shown == folded(saved.text)
    assert shown and STORY_ANSWER.startswith(shown) and shown != STORY_ANSWER
    assert chat.locator(f"#message-{answer} .badge").inner_text() == "stopped"
    assert chat.locator(f"#message-{answer}").get_by_role("button", name="Stop").count() == 0


def test_enter_during_ime_composition_does_not_send(chat):
    composer = chat.locator("#composer-text")
    composer.focus()
    chat.evaluate(
        """() => document.querySelector('#composer-text').addEventListener(
            'compositionend', () => { window.__compositionEnded = performance.now(); })"""
    )
    cdp = chat.context.new_cdp_session(chat)
    cdp.send("Input.imeSetComposition", {"text": "nihao", "selectionStart": 5, "selectionEnd": 5})

    chat.keyboard.press("Enter")  # picks the IME candidate: must not send
    assert composer.input_value().startswith("nihao")

    cdp.send("Input.insertText", {"text": "你好"})
    # chat.js ignores an Enter within 50 ms of compositionend (Safari sends the commit
    # Enter after it); a person's next Enter comes later than that.
    chat.wait_for_function("() => performance.now() - window.__compositionEnded > 60")
    chat.keyboard.press("Enter")
    answer = latest_answer_id(chat)
    wait_for_status(chat, answer, "complete")

    assert [frame["text"].strip() for frame in chat.sent.sends()] == ["你好"]
    assert question_text(chat) == "你好"
    assert composer.input_value() == ""


def test_shift_enter_adds_a_line_and_does_not_send(chat):
    composer = chat.locator("#composer-text")
    composer.focus()
    chat.keyboard.type("first line")
    chat.keyboard.press("Shift+Enter")
    chat.keyboard.type("second line")
    assert composer.input_value() == "first line\nsecond line"

    chat.keyboard.press("Enter")
    answer = latest_answer_id(chat)
    wait_for_status(chat, answer, "complete")

    assert [frame["text"] for frame in chat.sent.sends()] == ["first line\nsecond line"]
    assert question_text(chat).splitlines() == ["first line", "second line"]


def test_empty_or_blank_input_is_not_sent(chat):
    composer = chat.locator("#composer-text")
    composer.press("Enter")
    composer.fill("   \n\t  ")
    composer.press("Enter")
    chat.get_by_role("button", name="Send").click()
    assert composer.input_value() == "   \n\t  "

    send_message(chat, "Hello")
    answer = latest_answer_id(chat)
    wait_for_status(chat, answer, "complete")

    assert [frame["text"] for frame in chat.sent.sends()] == ["Hello"]
    assert question_text(chat) == "Hello"
    assert Message.objects.filter(role="user").count() == 1


def test_code_block_copy_button_copies_the_code(chat, live_server_ws, artifacts_dir):
    chat.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_ws.url)
    # Earlier conversations, so the screenshot shows a lived-in sidebar.
    owner = get_user_model().objects.get(username="ming")
    for title in ("Trip to Lisbon: three-day plan", "Quarterly report outline"):
        Conversation.objects.create(owner=owner, title=title)
    chat.reload()
    wait_for_socket(chat)

    send_message(chat, CODE, model="Sim Chat")
    answer = latest_answer_id(chat)
    wait_for_status(chat, answer, "complete")
    # The title is generated after the answer; wait for it so the screenshot shows it.
    chat.locator("#conversation-title", has_text=CODE_TITLE).wait_for()
    chat.locator("#composer-text").blur()
    chat.set_viewport_size({"width": 1280, "height": 1000})
    screenshot = artifacts_dir / "chat-finished.png"
    chat.screenshot(path=str(screenshot))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)

    block = chat.locator(f"#message-{answer} .code-block")
    assert block.count() == 1
    block.get_by_role("button", name="Copy code").click()
    block.get_by_role("button", name="Copy code").filter(has_text="Copied").wait_for()
    copied = chat.evaluate("navigator.clipboard.readText()")

    code = block.locator("code").inner_text()
    assert copied == code
    fence = re.search(r"```python\n(.*?)```", Message.objects.get(pk=answer).text, re.S)
    assert copied.rstrip("\n") == fence.group(1).rstrip("\n")
    assert "def count_words_file(items):" in copied
