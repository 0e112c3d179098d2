"""The chat page keeps its state straight: the address bar, the header, the composer.

Each test reproduces a bug of issue #16 as a person meets it in Chromium: a rename in
Chinese, an address bar that jumped back to another chat, Back after a search hit, a
second question sent into an unfinished answer, a stale refusal, a drawer Tab escaped,
and console errors on any page.
"""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from conversations.models import Attachment, Conversation, Message
from conversations.sharing import links
from tests.support.browser import (
    RECORDER_JS,
    Console,
    SentFrames,
    add_model,
    latest_answer_id,
    send_message,
    wait_for_live_text,
    wait_for_socket,
    wait_for_status,
)

PHONE = {"width": 375, "height": 812}


@pytest.fixture
def chat(page, make_user, login):
    add_model("sim-chat+fault=slow:400", "Sim Chat (fast)", default=True)
    add_model("sim-chat+fault=slow:20", "Sim Chat (slow)", position=1)
    page.console = Console(page)
    page.add_init_script(RECORDER_JS)
    page.sent = SentFrames().attach(page)
    make_user("ming", is_staff=True, is_superuser=True)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    return page


def conversation_of(user_name: str, title: str, question: str) -> Conversation:
    """A finished one-turn conversation, as if chatted earlier today."""
    conversation = Conversation.objects.create(
        owner=Conversation._meta.get_field("owner").related_model.objects.get(username=user_name),
        title=title,
    )
    asked = Message.objects.create(conversation=conversation, role="user", text=question)
    answer = Message.objects.create(
        conversation=conversation,
        parent=asked,
        role="assistant",
        status="complete",
        text=f"An answer about {title}.",
        model_name="sim-chat",
    )
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=answer)
    return conversation


def path_of(page) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url)


def shown_question(page) -> str:
    return page.locator("article.message-user .message-body").first.inner_text().strip()


def finished_turn(page, text: str, model: str | None = None) -> int:
    send_message(page, text, model=model)
    answer = latest_answer_id(page)
    wait_for_status(page, answer, "complete")
    return answer


# --- 1. Rename in place --------------------------------------------------------------


def test_rename_in_place_saves_chinese_everywhere(chat, live_server_ws):
    finished_turn(chat, "Plan a trip")
    conversation = Conversation.objects.get()
    chat.locator("#conversation-title", has_text="Trip").wait_for()

    chat.get_by_role("button", name="Rename", exact=True).click()
    box = chat.get_by_label("New name for this conversation")
    assert box.is_visible()
    assert box.input_value() == Conversation.objects.get().title
    box.fill("")
    box.press_sequentially("长城 笔记")
    box.press("Enter")

    chat.locator("#conversation-title", has_text="长城 笔记").wait_for()
    assert not box.is_visible()
    chat.locator(f"#conversation-link-{conversation.pk}", has_text="长城 笔记").wait_for()
    conversation.refresh_from_db()
    assert conversation.title == "长城 笔记"
    chat.locator("#sidebar-search").fill("长城")
    chat.locator("#search-results .search-hit-title", has_text="长城 笔记").first.wait_for()
    conversation.archived = True
    conversation.save()
    chat.goto(f"{live_server_ws.url}/archive/")
    assert chat.locator(".archive-row a", has_text="长城 笔记").is_visible()
    assert chat.console.errors == []


def test_escape_cancels_a_rename(chat):
    finished_turn(chat, "Plan a trip")
    chat.locator("#conversation-title", has_text="Trip").wait_for()
    title = Conversation.objects.get().title

    chat.get_by_role("button", name="Rename", exact=True).click()
    box = chat.get_by_label("New name for this conversation")
    box.fill("Something else")
    box.press("Escape")

    assert not box.is_visible()
    assert chat.locator("#conversation-title").inner_text() == title
    assert Conversation.objects.get().title == title


def test_enter_that_confirms_an_ime_candidate_does_not_save_the_rename(chat):
    finished_turn(chat, "Plan a trip")
    chat.locator("#conversation-title", has_text="Trip").wait_for()
    title = Conversation.objects.get().title
    chat.get_by_role("button", name="Rename", exact=True).click()
    box = chat.get_by_label("New name for this conversation")
    box.fill("")
    cdp = chat.context.new_cdp_session(chat)

    cdp.send(
        "Input.imeSetComposition", {"text": "changcheng", "selectionStart": 10, "selectionEnd": 10}
    )
    chat.keyboard.press("Enter")
    chat.wait_for_timeout(300)

    assert box.is_visible()
    assert Conversation.objects.get().title == title
    cdp.send("Input.insertText", {"text": "长城"})
    box.press("Enter")
    chat.locator("#conversation-title", has_text="长城").wait_for()
    assert Conversation.objects.get().title == "长城"


# --- 2 and 7. The address bar ----------------------------------------------------------


def test_address_bar_stays_on_the_conversation_on_screen(chat):
    older = conversation_of("ming", "Older chat", "An older question")
    chat.reload()
    wait_for_socket(chat)
    finished_turn(chat, "hello")
    created = Conversation.objects.exclude(pk=older.pk).get()
    assert path_of(chat) == f"/c/{created.pk}/"
    chat.go_back()
    chat.wait_for_url(re.compile(r"/$"))
    chat.locator("#messages-empty").wait_for()
    chat.go_forward()
    chat.wait_for_url(re.compile(rf"/c/{created.pk}/$"))
    chat.locator("article.message-user", has_text="hello").wait_for()
    wait_for_socket(chat)

    chat.locator(f"#conversation-link-{older.pk}").click()
    chat.wait_for_url(re.compile(rf"/c/{older.pk}/$"))
    # The turn's socket messages once pulled the address back to the new chat.
    finished_turn(chat, "and another thing")

    assert path_of(chat) == f"/c/{older.pk}/"
    assert shown_question(chat) == "An older question"
    chat.go_back()
    chat.wait_for_url(re.compile(rf"/c/{created.pk}/$"))
    chat.locator("article.message-user", has_text="hello").wait_for()
    chat.go_forward()
    chat.wait_for_url(re.compile(rf"/c/{older.pk}/$"))
    chat.locator("article.message-user", has_text="An older question").wait_for()
    assert chat.console.errors == []


def test_forward_pressed_while_the_page_loads_shows_the_address(chat):
    """Forward taken before htmx listens (its script still on the way) is not lost:
    the page loads the conversation its address names instead of keeping the other."""
    first = conversation_of("ming", "First chat", "The first question")
    second = conversation_of("ming", "Second chat", "The second question")
    base = re.match(r"^https?://[^/]+", chat.url).group(0)
    chat.goto(f"{base}/c/{first.pk}/")
    wait_for_socket(chat)
    chat.locator(f"#conversation-link-{second.pk}").click()
    chat.wait_for_url(re.compile(rf"/c/{second.pk}/$"))
    chat.locator("article.message-user", has_text="The second question").wait_for()

    held = []

    def hold(route):
        held.append(route)

    chat.route(re.compile(r"/htmx[^/]*\.js$"), hold)
    chat.go_back()  # htmx reloads the first chat, whose own htmx is now held back
    chat.locator("article.message-user", has_text="The first question").wait_for()
    chat.go_forward(wait_until="commit")  # the page's load waits for the held script
    chat.wait_for_url(re.compile(rf"/c/{second.pk}/$"), wait_until="commit")
    for route in held:
        route.continue_()
    chat.unroute(re.compile(r"/htmx[^/]*\.js$"))

    chat.locator("article.message-user", has_text="The second question").wait_for()
    assert path_of(chat) == f"/c/{second.pk}/"


def test_back_after_a_search_hit_shows_the_conversation_of_the_address(chat, live_server_ws):
    first = conversation_of("ming", "Tea notes", "How do I brew oolong?")
    second = conversation_of("ming", "Pasta notes", "How long do I boil penne?")
    chat.goto(f"{live_server_ws.url}/c/{first.pk}/")
    wait_for_socket(chat)

    chat.locator("#sidebar-search").fill("penne")
    chat.locator("#search-results .search-hit-link").first.click()
    chat.wait_for_url(re.compile(rf"/c/{second.pk}/"))
    chat.locator("article.message-user", has_text="penne").wait_for()
    chat.go_back()

    chat.wait_for_url(f"{live_server_ws.url}/c/{first.pk}/")
    chat.locator("article.message-user", has_text="How do I brew oolong?").wait_for()
    assert chat.locator("#search-results").count() == 0
    chat.go_forward()
    chat.locator("article.message-user", has_text="penne").wait_for()
    assert chat.console.errors == []


# --- 9. One answer at a time --------------------------------------------------------------


def test_send_waits_while_an_answer_streams_and_escape_stops_it(chat):
    send_message(chat, "Tell me a story", model="Sim Chat (slow)")
    answer = latest_answer_id(chat)
    wait_for_live_text(chat, answer)
    send = chat.get_by_role("button", name="Send", exact=True)

    assert send.is_disabled()
    assert chat.get_by_text("Wait for the answer to finish, or stop it").is_visible()
    chat.locator("#composer-text").fill("A second question")
    chat.locator("#composer-text").press("Enter")
    chat.wait_for_timeout(300)
    assert chat.locator("article.message-user").count() == 1
    assert chat.locator("#composer-text").input_value() == "A second question"

    chat.locator("#composer-text").press("Escape")
    wait_for_status(chat, answer, "cancelled")
    assert not send.is_disabled()
    assert not chat.get_by_text("Wait for the answer to finish, or stop it").is_visible()
    chat.locator("#composer-text").press("Enter")
    chat.locator("article.message-user", has_text="A second question").wait_for()


def test_server_refuses_a_second_send_into_a_streaming_conversation(chat):
    send_message(chat, "Tell me a story", model="Sim Chat (slow)")
    answer = latest_answer_id(chat)
    wait_for_live_text(chat, answer)
    conversation = Message.objects.get(pk=answer).conversation_id

    chat.evaluate(
        """(conversation) => window.__socket.send(JSON.stringify(
            {action: "send", conversation: String(conversation), text: "Sneaked in"}))""",
        conversation,
    )

    chat.locator("#composer-error", has_text="still being written").wait_for()
    assert not Message.objects.filter(text="Sneaked in").exists()
    chat.locator("#composer-text").press("Escape")
    wait_for_status(chat, answer, "cancelled")


# --- 12. Stale refusals -------------------------------------------------------------------


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (47, 111, 94)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_refusal_goes_when_the_model_changes(chat):
    from conversations.models import ModelChoice

    ModelChoice.objects.filter(label="Sim Chat (fast)").update(supports_images=True)
    add_model("sim-mini", "Sim Mini", position=3)
    chat.reload()
    wait_for_socket(chat)
    chat.set_input_files(
        "#composer-file", files=[{"name": "a.png", "mimeType": "image/png", "buffer": png()}]
    )
    chat.wait_for_function(
        "() => document.querySelector('#composer-attachments [data-attachment-id]')"
    )

    send_message(chat, "What is this?", model="Sim Mini")
    chat.locator("#composer-error", has_text="does not accept images").wait_for()
    chat.select_option("#composer-model", label="Sim Chat (fast)")

    assert chat.locator("#composer-error").inner_text().strip() == ""
    assert chat.locator("#composer-text").input_value() == "What is this?"
    for attachment in Attachment.objects.all():
        attachment.delete()


# --- The phone drawer -----------------------------------------------------------------


def test_phone_drawer_keeps_tab_inside(chat):
    chat.set_viewport_size(PHONE)
    conversation_of("ming", "Tea notes", "How do I brew oolong?")
    chat.reload()
    wait_for_socket(chat)
    chat.get_by_role("button", name="Show conversations").click()
    chat.wait_for_function("() => document.activeElement.id === 'sidebar-search'")

    inside = "() => document.querySelector('#sidebar').contains(document.activeElement)"
    for _ in range(30):
        chat.keyboard.press("Tab")
        assert chat.evaluate(inside), chat.evaluate("document.activeElement.outerHTML")
    for _ in range(30):
        chat.keyboard.press("Shift+Tab")
        assert chat.evaluate(inside), chat.evaluate("document.activeElement.outerHTML")


# --- 8. No console errors anywhere ----------------------------------------------------------


def test_no_page_logs_a_console_error(chat, live_server_ws):
    base = live_server_ws.url
    # A message box grown over several lines, then New chat and a send: htmx once copied
    # its style attribute onto the new box, which the Content-Security-Policy refused.
    chat.locator("#composer-text").fill("one\ntwo\nthree\nfour\nfive")
    chat.locator("#composer-text").press("Enter")
    wait_for_status(chat, latest_answer_id(chat), "complete")
    chat.locator("#composer-text").fill("six\nseven\neight")
    chat.locator("#new-chat").click()
    chat.wait_for_url(f"{base}/")
    chat.locator("#composer-text").fill("nine\nten\neleven")
    chat.locator("#composer-text").press("Enter")
    wait_for_status(chat, latest_answer_id(chat), "complete")
    chat.locator("#conversation-title", has_text=re.compile(r"\w")).wait_for()

    for name in ("Pin", "Unpin", "Archive", "Unarchive"):
        chat.get_by_role("button", name=name, exact=True).click()
        chat.get_by_role(
            "button",
            name={"Pin": "Unpin", "Unpin": "Pin", "Archive": "Unarchive", "Unarchive": "Archive"}[
                name
            ],
            exact=True,
        ).wait_for()
    chat.get_by_role("button", name="Rename", exact=True).click()
    chat.get_by_label("New name for this conversation").fill("Renamed")
    chat.get_by_label("New name for this conversation").press("Enter")
    chat.locator("#conversation-title", has_text="Renamed").wait_for()
    chat.locator("#sidebar-search").fill("nine")
    chat.locator("#search-results .search-hit").first.wait_for()
    chat.get_by_role("link", name="Archive", exact=True).click()
    chat.wait_for_url(f"{base}/archive/")

    conversation = Conversation.objects.get(title="Renamed")
    link = links.create_link(conversation=conversation, visibility="team")
    from conversations.models import ModelChoice

    model = ModelChoice.objects.first()
    for path in (
        "/usage/",
        "/shares/",
        f"/s/{link.token}/",
        "/search/?q=nine",
        "/admin/",
        f"/admin/conversations/modelchoice/{model.pk}/change/",
        f"/c/{conversation.pk}/",
    ):
        chat.goto(f"{base}{path}")
        chat.wait_for_load_state("networkidle")
        assert "{#" not in chat.locator("body").inner_text(), path  # a template comment shown

    assert chat.console.errors == []
