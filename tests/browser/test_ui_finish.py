"""The chat page's finish: themes, the phone layout, focus and names, feedback, empty
state, screenshots of every theme / size / language, and an axe-core accessibility check."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from conversations.models import Conversation
from tests.support.browser import (
    RECORDER_JS,
    STORY,
    SentFrames,
    add_model,
    latest_answer_id,
    send_message,
    wait_for_socket,
    wait_for_status,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"

CODE = "Show me Python code to count words in a file"
CODE_TITLE = "Count Words File"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}

# Every WebSocket the page opens, so a test can drop the chat socket like a network would.
SOCKETS_JS = """
(() => {
  const Native = window.WebSocket;
  window.__rawSockets = [];
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    window.__rawSockets.push(socket);
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, {
    CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3,
  });
})();
"""


def set_up_models() -> None:
    add_model("sim-chat+fault=slow:400", "Sim Chat (fast)", default=True)
    add_model("sim-chat+fault=slow:60", "Sim Chat (slow 60)", position=1)
    add_model("sim-chat", "Sim Chat", position=2)


def open_chat(page, make_user, login, username: str = "ming"):
    set_up_models()
    make_user(username)
    page.add_init_script(RECORDER_JS)
    page.add_init_script(SOCKETS_JS)
    page.sent = SentFrames().attach(page)
    login(page, username, "pw-for-tests-123")
    wait_for_socket(page)
    return page


@pytest.fixture
def chat(page, make_user, login):
    return open_chat(page, make_user, login)


def finished_code_answer(page, model: str | None = None) -> int:
    send_message(page, CODE, model=model)
    answer = latest_answer_id(page)
    wait_for_status(page, answer, "complete")
    page.locator("#conversation-title", has_text=CODE_TITLE).wait_for()
    return answer


def scroll_width(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


def background(page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


LIGHT_BG = "rgb(247, 247, 245)"
DARK_BG = "rgb(22, 23, 21)"


# --- Themes ------------------------------------------------------------------------------


def test_theme_follows_the_system_and_the_choice_is_remembered(chat):
    # The theme script is render-blocking in <head>: it runs before the first paint.
    blocking = chat.evaluate(
        """() => [...document.head.querySelectorAll('script[src*="theme"]')]
            .map((s) => !s.defer && !s.async)"""
    )
    assert blocking == [True]
    assert chat.get_by_role("button", name="System").get_attribute("aria-pressed") == "true"

    chat.emulate_media(color_scheme="dark")
    assert background(chat) == DARK_BG
    chat.emulate_media(color_scheme="light")
    assert background(chat) == LIGHT_BG

    chat.get_by_role("button", name="Dark").click()
    assert chat.evaluate("document.documentElement.dataset.theme") == "dark"
    assert background(chat) == DARK_BG
    assert chat.get_by_role("button", name="Dark").get_attribute("aria-pressed") == "true"

    # Remembered, and on <html> before any deferred script ran.
    chat.add_init_script(
        """document.addEventListener("readystatechange", () => {
            if (document.readyState === "interactive" && !window.__themeAtParse)
                window.__themeAtParse = document.documentElement.dataset.theme || "none";
        });"""
    )
    chat.reload()
    assert chat.evaluate("window.__themeAtParse") == "dark"
    assert background(chat) == DARK_BG

    chat.get_by_role("button", name="Light").click()
    chat.emulate_media(color_scheme="dark")
    assert background(chat) == LIGHT_BG  # the choice beats the system

    chat.get_by_role("button", name="System").click()
    assert chat.evaluate("document.documentElement.dataset.theme") is None
    assert chat.evaluate("localStorage.getItem('chatweb-theme')") is None
    assert background(chat) == DARK_BG


# --- Phone layout ------------------------------------------------------------------------


def test_phone_layout_has_a_drawer_a_menu_and_no_horizontal_scroll(chat, artifacts_dir):
    chat.set_viewport_size(PHONE)
    assert scroll_width(chat) <= 375
    finished_code_answer(chat)
    assert scroll_width(chat) <= 375

    sidebar = chat.locator("#sidebar")
    toggle = chat.get_by_role("button", name="Show conversations")
    assert not sidebar.is_visible() or sidebar.bounding_box()["x"] < -200
    assert toggle.is_visible()
    assert toggle.get_attribute("aria-expanded") == "false"

    # Open: focus moves into the drawer; Escape closes and gives focus back.
    toggle.click()
    chat.wait_for_function("() => document.activeElement.id === 'sidebar-search'")
    assert toggle.get_attribute("aria-expanded") == "true"
    chat.wait_for_function(
        "() => document.querySelector('#sidebar').getBoundingClientRect().x === 0"
    )
    assert chat.locator(".sidebar-backdrop").is_visible()
    assert scroll_width(chat) <= 375
    assert chat.evaluate("document.querySelector('#chat-main').inert")
    chat.screenshot(path=str(artifacts_dir / "phone-drawer.png"))
    chat.keyboard.press("Escape")
    chat.wait_for_function(
        "() => document.activeElement.matches('#chat-main [data-toggle-sidebar]')"
    )
    assert not chat.evaluate("document.querySelector('#chat-main').inert")
    assert not chat.locator(".sidebar-backdrop").is_visible()

    # The backdrop and the close button close it too.
    toggle.click()
    chat.locator(".sidebar-backdrop").click(position={"x": 360, "y": 400})
    assert not chat.evaluate("document.body.classList.contains('sidebar-open')")
    toggle.click()
    chat.get_by_role("button", name="Hide conversations").click()
    assert not chat.evaluate("document.body.classList.contains('sidebar-open')")

    # Header actions live behind "More actions".
    share = chat.get_by_role("button", name="Share")
    assert not share.is_visible()
    more = chat.get_by_role("button", name="More actions")
    more.click()
    assert more.get_attribute("aria-expanded") == "true"
    assert share.is_visible()
    chat.screenshot(path=str(artifacts_dir / "phone-menu.png"))
    for button in ("Pin", "Archive", "Rename", "Delete"):
        box = chat.get_by_role("button", name=button, exact=True).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, button
    chat.keyboard.press("Escape")
    assert not share.is_visible()
    assert chat.evaluate("document.activeElement.getAttribute('aria-label')") == "More actions"

    # The composer fits and still sends.
    send = chat.get_by_role("button", name="Send", exact=True)
    box = send.bounding_box()
    assert box["x"] + box["width"] <= 375
    send_message(chat, STORY)
    wait_for_status(chat, latest_answer_id(chat), "complete")
    assert scroll_width(chat) <= 375


# --- Names, focus, empty state -----------------------------------------------------------


def test_empty_state_offers_examples_that_fill_the_composer(page, make_user, login, artifacts_dir):
    chat = open_chat(page, make_user, login, "newcomer")
    chat.screenshot(path=str(artifacts_dir / "chat-empty-examples.png"))
    examples = chat.locator("#messages-empty .example-prompt")
    assert examples.count() >= 3
    assert chat.locator("#sidebar-empty").is_visible()
    text = examples.nth(1).inner_text()
    examples.nth(1).click()
    assert chat.locator("#composer-text").input_value() == text
    assert chat.evaluate("document.activeElement.id") == "composer-text"


def test_icon_buttons_have_names_and_focus_is_visible(chat):
    finished_code_answer(chat)
    unnamed = chat.evaluate(
        """() => [...document.querySelectorAll(
                "button, summary, a[href], select, textarea, input:not([type=hidden])")]
            .filter((el) => el.checkVisibility())
            .filter((el) => !(el.getAttribute("aria-label") || el.innerText.trim()
                || (el.labels && el.labels.length) || el.getAttribute("title")))
            .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []
    # Tabbing through the page shows an outline (or ring) on every stop.
    invisible = []
    chat.locator("body").focus()
    for _ in range(25):
        chat.keyboard.press("Tab")
        shown = chat.evaluate(
            """() => {
                const el = document.activeElement;
                const box = el.closest(".composer-box") || el;
                const style = getComputedStyle(el);
                const boxStyle = getComputedStyle(box);
                return [el.outerHTML.slice(0, 80),
                        (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
                        || boxStyle.boxShadow !== "none"];
            }"""
        )
        if not shown[1] and not shown[0].startswith("<body"):
            invisible.append(shown[0])
    assert invisible == []


# --- Streaming: no jumps, follow, jump to latest -----------------------------------------


def test_stream_keeps_its_rows_steady_and_jump_to_latest_works(chat):
    owner = get_user_model().objects.get(username="ming")
    Conversation.objects.create(owner=owner, title="Earlier")
    chat.set_viewport_size({"width": 900, "height": 420})
    send_message(chat, CODE, model="Sim Chat (slow 60)")
    answer = latest_answer_id(chat)
    generating = chat.locator(f"#message-{answer} .generating")
    generating.wait_for()
    streaming_height = generating.bounding_box()["height"]

    # The transcript follows the stream while the reader stays at the bottom.
    chat.wait_for_function(
        "() => { const t = document.querySelector('#transcript');"
        " return t.scrollHeight > t.clientHeight + 200; }",
        timeout=20_000,
    )
    at_bottom = (
        "() => { const t = document.querySelector('#transcript');"
        " return t.scrollHeight - t.scrollTop - t.clientHeight < 80; }"
    )
    assert chat.evaluate(at_bottom)
    # Scrolled up: the page stays put and offers the way back.
    chat.evaluate("document.querySelector('#transcript').scrollTop = 0")
    jump = chat.get_by_role("button", name="Jump to latest ↓")
    jump.wait_for()
    chat.wait_for_timeout(600)
    assert chat.evaluate("document.querySelector('#transcript').scrollTop") < 40
    jump.click()
    assert chat.evaluate(at_bottom)
    assert not jump.is_visible()

    wait_for_status(chat, answer, "complete", timeout=40_000)
    actions = chat.locator(f"#message-{answer} .message-actions")
    assert abs(actions.bounding_box()["height"] - streaming_height) <= 1


# --- Feedback ----------------------------------------------------------------------------


def test_dropped_socket_shows_the_indicator_and_reconnects_silently(chat):
    send_message(chat, STORY)
    wait_for_status(chat, latest_answer_id(chat), "complete")
    indicator = chat.locator("#connection")
    assert not indicator.is_visible()
    watches = len([f for f in chat.sent.frames if f.get("action") == "watch"])

    chat.evaluate(
        "window.__rawSockets.filter((s) => s.readyState === 1).forEach((s) => s.close(4000))"
    )
    indicator.wait_for(state="visible")
    assert indicator.get_attribute("role") == "status"
    chat.wait_for_function("() => window.__socketOpens >= 2")
    indicator.wait_for(state="hidden")
    # The reopened socket asks for the conversation again, which resyncs the transcript.
    watches_after = [f for f in chat.sent.frames if f.get("action") == "watch"]
    assert len(watches_after) > watches
    assert watches_after[-1]["conversation"]
    assert chat.locator("article.message-assistant.status-complete").count() == 1


def test_copy_shows_a_toast_that_goes_away(chat, live_server_ws):
    chat.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_ws.url)
    answer = finished_code_answer(chat)
    chat.locator(f"#message-{answer} [data-copy-message]").click()
    toast = chat.locator("#toasts .toast", has_text="Copied to clipboard")
    toast.wait_for()
    assert chat.locator("#toasts").get_attribute("aria-live") == "polite"
    toast.wait_for(state="detached", timeout=8_000)


def test_error_pages_help_in_both_languages(page, live_server_ws):
    page.goto(f"{live_server_ws.url}/no/such/page/")
    assert page.get_by_role("heading", name="Page not found").is_visible()
    assert page.get_by_role("link", name="Go to chatweb").is_visible()
    page.context.set_extra_http_headers({"Accept-Language": "zh-CN,zh;q=0.9"})
    page.goto(f"{live_server_ws.url}/no/such/page/")
    assert page.locator("html").get_attribute("lang").startswith("zh")
    assert page.locator("h1").inner_text() != "Page not found"


# --- Screenshots -------------------------------------------------------------------------


def switch_language(page, code: str) -> None:
    page.set_viewport_size(DESKTOP)
    page.select_option("#language-select", code)
    page.wait_for_function(f"() => document.documentElement.lang === '{code}'")
    wait_for_socket(page)


def test_screenshots_of_every_theme_size_and_language(chat, artifacts_dir):
    owner = get_user_model().objects.get(username="ming")
    for title in ("Trip to Lisbon: three-day plan", "Quarterly report outline"):
        Conversation.objects.create(owner=owner, title=title)
    chat.reload()
    wait_for_socket(chat)
    finished_code_answer(chat, model="Sim Chat")

    update = os.environ.get("UPDATE_SCREENSHOTS") == "1"
    taken = []
    for language, code in (("en", "en"), ("zh", "zh-hans")):
        if code != "en":
            switch_language(chat, code)
        for theme in ("light", "dark"):
            chat.evaluate(f"localStorage.setItem('chatweb-theme', '{theme}')")
            for size, viewport in (("desktop", DESKTOP), ("mobile", PHONE)):
                chat.set_viewport_size(viewport)
                chat.reload()
                wait_for_socket(chat)
                chat.locator(".code-block").first.wait_for()
                chat.locator("#composer-text").blur()
                chat.evaluate("document.fonts.ready")
                assert chat.evaluate("document.documentElement.dataset.theme") == theme
                assert scroll_width(chat) <= viewport["width"]
                name = f"chat-{theme}-{language}-{size}.png"
                chat.screenshot(path=str(artifacts_dir / name))
                taken.append(name)
    if update:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in taken:
            shutil.copyfile(artifacts_dir / name, DOCS_SCREENSHOTS / name)
    assert len(taken) == 8


# --- Accessibility (axe-core) ------------------------------------------------------------


SEVERE = ("serious", "critical")
AXE_RUN = """async () => {
    const tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];
    const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
    return {
        passes: result.passes.length,
        violations: result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(
                (n) => n.target.join(" ") + " :: " + (n.failureSummary || "")),
        })),
    };
}"""


@pytest.mark.skipif(
    not AXE.exists(),
    reason="axe-core is not installed: run `npm ci --prefix tests/browser` (needs Node.js)",
)
def test_chat_page_has_no_serious_accessibility_violations(
    browser, transactional_db, monkeypatch, make_user, login, artifacts_dir
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # axe is injected as an inline script, which the page's CSP rightly refuses: this
    # context alone bypasses the CSP; the app and its headers are unchanged.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        chat = open_chat(page, make_user, login)
        problems = {}
        for state in ("empty", "conversation"):
            if state == "conversation":
                finished_code_answer(chat)
            for theme in ("light", "dark"):
                chat.evaluate(f"localStorage.setItem('chatweb-theme', '{theme}')")
                chat.reload()
                wait_for_socket(chat)
                chat.add_script_tag(path=str(AXE))
                results = chat.evaluate(AXE_RUN)
                assert results["passes"] > 20  # axe really ran
                severe = [v for v in results["violations"] if v["impact"] in SEVERE]
                if severe:
                    problems[f"{state}/{theme}"] = severe
        assert problems == {}
    finally:
        context.close()
