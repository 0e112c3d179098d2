"""Helpers for tests that drive the chat page in Chromium (tests/browser, scale-out)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field

# The simulator's scripted answer to STORY (conversations/gateway/simulator/answers.py):
# one plain paragraph, so every state of it while streaming is a prefix of the whole.
STORY = "Tell me a story"
STORY_ANSWER = (
    "Got it: “Tell me a story”. I'm Sim Chat, an offline simulator. What would you like to do next?"
)

PASSWORD = "pw-for-tests-123"  # every test user's (`make_user` in tests/conftest.py)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Installed in every page before its own scripts: after each batch of DOM changes it
# records the latest answer bubble (status, committed blocks, open tail, whole body), so
# a test sees every state the page went through, however briefly, without polling. It
# also counts the chat socket's openings and the answer snapshots received (a snapshot
# replaces a streaming body whole, when the page starts or resumes following it), and
# keeps the socket in `window.__socket` for tests that send frames of their own.
RECORDER_JS = """
(() => {
  window.__bubbleStates = [];
  window.__socketOpens = 0;
  window.__snapshots = 0;
  document.addEventListener("htmx:wsOpen", (event) => {
    window.__socketOpens += 1;
    window.__socket = event.detail.socketWrapper;
  });
  document.addEventListener("htmx:wsBeforeMessage", (event) => {
    const message = String(event.detail.message || "");
    if (message.includes('class="message-body markdown" hx-swap-oob="true"')) {
      window.__snapshots += 1;
    }
  });
  let last = "";
  const text = (element) => (element ? element.innerText : null);
  const record = () => {
    const articles = document.querySelectorAll("article.message-assistant");
    const article = articles[articles.length - 1];
    if (!article) return;
    // A copy button copy.js has not labelled yet is never painted: its observer labels
    // it in this same microtask checkpoint, and that mutation records the state.
    if (article.querySelector(".copy-button:not([aria-label])")) return;
    const status = (article.className.match(/status-(\\w+)/) || [])[1] || "";
    const state = {
      socket_opens: window.__socketOpens,
      snapshots: window.__snapshots,
      id: article.id,
      status: status,
      blocks: text(article.querySelector('[id$="-blocks"]')),
      tail: text(article.querySelector('[id$="-tail"]')),
      body: text(article.querySelector(".message-body")) || "",
    };
    const key = JSON.stringify(state);
    if (key !== last) {
      last = key;
      window.__bubbleStates.push(state);
    }
  };
  new MutationObserver(record).observe(document, {
    childList: true, subtree: true, characterData: true, attributes: true,
    attributeFilter: ["class"],
  });
})();
"""


@dataclass(frozen=True)
class BubbleState:
    socket_opens: int  # how many times the page's socket had opened by then
    id: str
    status: str
    blocks: str | None
    tail: str | None
    body: str
    snapshots: int = 0  # answer snapshots the page had received by then

    @property
    def live_text(self) -> str:
        """The text a reader sees in the bubble while it streams."""
        return folded(f"{self.blocks or ''} {self.tail or ''}")


def folded(text: str) -> str:
    """Whitespace folded to single spaces, so layout differences do not matter."""
    return " ".join(text.split())


def bubble_states(page, message_id: int) -> list[BubbleState]:
    """Every state the page showed for answer `message_id` since it was (re)loaded."""
    raw = page.evaluate("window.__bubbleStates")
    return [BubbleState(**state) for state in raw if state["id"] == f"message-{message_id}"]


def streaming_states(page, message_id: int) -> list[BubbleState]:
    """The states with text the page showed while the answer streamed.

    Only those after the socket opened: before, the page shows what the server rendered,
    not the live stream.
    """
    return [
        state
        for state in bubble_states(page, message_id)
        if state.status == "streaming" and state.live_text and state.socket_opens
    ]


def repeated_lines(text: str, reference: str) -> list[str]:
    """Lines of `text` that occur more often than in `reference` (duplicated paragraphs)."""
    have = Counter(line.strip() for line in text.splitlines() if line.strip())
    allowed = Counter(line.strip() for line in reference.splitlines() if line.strip())
    return [line for line, count in have.items() if line in allowed and count > allowed[line]]


@dataclass
class SentFrames:
    """The JSON frames the page sent on its chat websocket(s), in order."""

    frames: list[dict] = field(default_factory=list)

    def attach(self, page) -> SentFrames:
        page.on("websocket", self._watch_socket)
        return self

    def _watch_socket(self, socket) -> None:
        socket.on("framesent", self._record)

    def _record(self, payload) -> None:
        try:
            frame = json.loads(payload)
        except (TypeError, ValueError):
            return
        if isinstance(frame, dict):
            self.frames.append(frame)

    def sends(self) -> list[dict]:
        return [frame for frame in self.frames if frame.get("action") == "send"]


def sign_in(page, base_url: str, username: str, password: str) -> None:
    """Sign in through the real login form and wait for the chat page."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")
    wait_for_socket(page)


def wait_for_socket(page) -> None:
    """Wait until the chat socket opened (the page needs RECORDER_JS installed)."""
    page.wait_for_function("() => window.__socketOpens > 0")


class Console:
    """Every console error and uncaught exception of a page, with the page's address."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        self.page = page

    def _message(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"{self.page.url}: {message.text}")


def add_model(upstream_id: str, label: str, *, default: bool = False, position: int = 0):
    """Put a model in the catalogue (the composer lists every enabled one)."""
    from conversations.models import ModelChoice

    return ModelChoice.objects.create(
        upstream_id=upstream_id, label=label, is_default=default, position=position
    )


def send_message(page, text: str, *, model: str | None = None) -> None:
    """Type `text` in the composer (choosing the model by label) and press Enter."""
    if model is not None:
        page.select_option("#composer-model", label=model)
    composer = page.locator("#composer-text")
    composer.fill(text)
    composer.press("Enter")


def latest_answer_id(page, *, timeout: float = 10_000) -> int:
    """Wait until the last answer bubble is a saved one and return its message id.

    The bubble drawn before the save has no message id yet (`data-message-id`).
    """
    saved = page.wait_for_function(
        """() => {
            const answers = document.querySelectorAll("article.message-assistant");
            const last = answers[answers.length - 1];
            return last && last.dataset.messageId;
        }""",
        timeout=timeout,
    )
    return int(saved.json_value())


def wait_for_status(page, message_id: int, status: str, *, timeout: float = 15_000) -> None:
    page.locator(f"article#message-{message_id}.status-{status}").wait_for(timeout=timeout)


def wait_for_live_text(page, message_id: int, *, longer_than: int = 0) -> str:
    """Wait until the streaming bubble shows more than `longer_than` characters."""
    selector = f"#message-{message_id}-body"
    page.wait_for_function(
        """([selector, length]) => {
            const body = document.querySelector(selector);
            const article = body && body.closest("article");
            return article && article.classList.contains("status-streaming")
                && body.innerText.trim().length > length;
        }""",
        arg=[selector, longer_than],
    )
    return folded(page.locator(selector).inner_text())


def body_text(page, message_id: int) -> str:
    return folded(page.locator(f"#message-{message_id}-body").inner_text())


def rendered_text(page, markdown: str) -> str:
    """The text the page shows for `markdown` rendered by the app, whitespace folded."""
    from conversations.rendering.markdown import render_markdown

    return folded(
        page.evaluate(
            """(html) => {
                const scratch = document.createElement("div");
                scratch.className = "message-body markdown";
                scratch.style.position = "absolute";
                scratch.style.left = "-10000px";
                scratch.innerHTML = html;
                // Label copy buttons as copy.js does for everything the page shows.
                const labels = document.querySelector("script[data-copy-label]");
                scratch.querySelectorAll(".copy-button").forEach((button) => {
                    button.textContent = labels ? labels.dataset.copyLabel : "";
                });
                document.body.appendChild(scratch);
                const text = scratch.innerText;
                scratch.remove();
                return text;
            }""",
            render_markdown(markdown),
        )
    )


def question_text(page) -> str:
    """The text of the page's only question bubble."""
    question = page.locator("article.message-user")
    assert question.count() == 1
    return question.locator(".message-body").inner_text().strip()


def wait_until_servers_are_quiet(timeout: float = 15.0) -> None:
    """Let the test servers finish their database work before the test database is flushed.

    A server still streaming an answer, or naming a new conversation after its first
    answer, writes while pytest-django truncates the tables; on PostgreSQL the two can
    deadlock. Wait (bounded) until no answer streams and every answered conversation
    has its title.
    """
    import time

    from django.db.models import Exists, OuterRef

    from conversations.models import Conversation, Message

    complete = Message.objects.filter(
        conversation=OuterRef("pk"), role="assistant", status="complete"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = Message.objects.filter(status="streaming").exists() or (
            Conversation.objects.filter(title="").filter(Exists(complete)).exists()
        )
        if not busy:
            break
        time.sleep(0.1)
    wait_until_no_other_session_works(deadline)


def wait_until_no_other_session_works(deadline: float) -> None:
    """On PostgreSQL, wait until no other connection to the test database is at work.

    A title saved is followed by the sockets re-reading their sidebar entry; such a
    read holding a share lock while pytest-django's TRUNCATE waits for an exclusive
    one deadlocked. Two quiet looks in a row, a tenth of a second apart, bounded by
    `deadline`.
    """
    import time

    from django.db import connection

    if connection.vendor != "postgresql":
        return
    quiet_looks = 0
    while quiet_looks < 2 and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
            (working,) = cursor.fetchone()
        quiet_looks = quiet_looks + 1 if working == 0 else 0
        time.sleep(0.1)
