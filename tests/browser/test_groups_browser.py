"""A group conversation (issue #23) in Chromium: three people, each in a browser context
of their own, against a real Daphne on the simulator.

The owner Ming and the members Mei and 李华 open the same conversation. They see each
other's messages and the model's answer live, join an answer mid-stream, stop one
another's answer; a member gets a member's header and dialog, leaves, or is removed
while looking; and everyone sees who is here and who is typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from conversations.groups import membership
from conversations.models import Conversation, Message
from tests.support.browser import (
    PASSWORD,
    RECORDER_JS,
    Console,
    add_model,
    body_text,
    bubble_states,
    folded,
    latest_answer_id,
    rendered_text,
    repeated_lines,
    send_message,
    streaming_states,
    wait_for_live_text,
    wait_for_socket,
    wait_for_status,
)

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/groups-shots")  # the end of the first test, for a person to look at

FAST = "Sim Chat (fast)"
SLOW = "Sim Chat (slow 40)"
HELLO = "@model 你好，今天的计划是什么？"  # noqa: RUF001 - Chinese punctuation
CODE = "@model Show me Python code to count words in a file"
COFFEE = "先喝咖啡？Coffee first, then the standup?"  # noqa: RUF001 - Chinese punctuation

# Counts the transcripts the page received: the server sends one after each watch, once
# the socket listens to the conversation's room, so from then on it sees the others' turns.
TRANSCRIPTS_JS = """
(() => {
  window.__transcripts = 0;
  document.addEventListener("htmx:wsBeforeMessage", (event) => {
    const message = String(event.detail.message || "");
    if (message.includes('id="messages" hx-swap-oob="innerHTML"')) window.__transcripts += 1;
  });
})();
"""


@dataclass
class Person:
    username: str
    name: str  # as the page shows it (display_name)
    user_id: int = 0
    page: object = None
    console: Console | None = None


@dataclass
class Group:
    conversation: Conversation
    owner: Person
    mei: Person
    li: Person
    url: str

    @property
    def people(self) -> list[Person]:
        return [self.owner, self.mei, self.li]

    @property
    def address(self) -> str:
        return f"{self.url}/c/{self.conversation.pk}/"

    def open(self, person: Person) -> None:
        """Show the conversation on the person's page and wait until it follows it live."""
        person.page.goto(self.address)
        wait_for_socket(person.page)
        person.page.wait_for_function("() => window.__transcripts > 0")


@pytest.fixture
def group(browser, make_user, login, live_server_ws, monkeypatch):
    """A three-person group (mention mode), each person signed in in their own context."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    add_model("sim-chat+fault=slow:400", FAST, default=True)
    add_model("sim-chat+fault=slow:40", SLOW, position=1)
    ming = make_user("ming", first_name="Ming", last_name="Zhao")
    mei = make_user("mei", first_name="Mei", last_name="Lin")
    li = make_user("li", first_name="李华")
    conversation = Conversation.objects.create(owner=ming, title="Standup 站会")
    membership.invite(conversation, ming, [mei, li])
    conversation.refresh_from_db()
    assert conversation.is_group

    people = [
        Person("ming", "Ming Zhao", ming.pk),
        Person("mei", "Mei Lin", mei.pk),
        Person("li", "李华", li.pk),
    ]
    contexts = []
    for person in people:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(10_000)
        contexts.append(context)
        person.page = context.new_page()
        person.console = Console(person.page)
        person.page.add_init_script(RECORDER_JS)
        person.page.add_init_script(TRANSCRIPTS_JS)
        # The members dialog asks before removing or leaving (hx-confirm).
        person.page.on("dialog", lambda dialog: dialog.accept())
        login(person.page, person.username, PASSWORD)
        wait_for_socket(person.page)
    yield Group(conversation, *people, url=live_server_ws.url)
    for context in contexts:
        context.close()


def question(page, text: str):
    """The question bubble showing `text` (saved, not the pending one)."""
    return page.locator("article.message-user[data-message-id]", has_text=text)


def author_of(page, text: str) -> str:
    bubble = question(page, text)
    bubble.wait_for()
    return bubble.locator(".message-author .author-name").inner_text().strip()


def final_text(page, message_id: int) -> str:
    return rendered_text(page, Message.objects.get(pk=message_id).text)


def no_console_errors(group: Group) -> None:
    for person in group.people:
        assert person.console.errors == [], person.console.errors


# --- 1. Live messages ------------------------------------------------------------------


def test_everyone_sees_the_others_messages_and_the_answer_live(group):
    for person in group.people:
        group.open(person)
    owner, mei, li = group.owner.page, group.mei.page, group.li.page
    assert owner.locator("#group-bar").get_by_text("@model").is_visible()

    send_message(owner, HELLO, model=SLOW)
    answer = latest_answer_id(owner)
    for page in (mei, li):
        assert author_of(page, HELLO) == "Ming Zhao"
        assert question(page, HELLO).locator(".message-author .avatar").inner_text() == "MZ"
        page.locator(f"article#message-{answer}").wait_for()
    for page in (owner, mei, li):
        wait_for_status(page, answer, "complete")

    saved = Message.objects.get(pk=answer)
    assert saved.parent.text == HELLO and saved.parent.author.username == "ming"
    final = final_text(owner, answer)
    assert final
    for page in (owner, mei, li):
        assert body_text(page, answer) == final
        assert question(page, HELLO).locator(".message-body").inner_text().strip() == HELLO
    for page in (mei, li):  # streamed into the members' pages, not drawn all at once
        live = [state.live_text for state in streaming_states(page, answer)]
        assert live, "the member's page never showed the answer streaming"
        assert all(final.startswith(text) for text in live), live
        assert any(text != final for text in live), live
        assert bubble_states(page, answer)[-1].status == "complete"

    # Mei talks to the others without mentioning the model: no answer.
    send_message(mei, COFFEE)
    for page in (owner, li, mei):
        assert author_of(page, COFFEE) == "Mei Lin"
    assert question(li, COFFEE).locator(".message-author .avatar").inner_text() == "ML"
    said = Message.objects.get(text=COFFEE)
    assert said.role == "user" and said.author.username == "mei"
    owner.wait_for_timeout(1_000)  # time for an answer that must not come
    assert Message.objects.filter(role="assistant").count() == 1
    assert not Message.objects.filter(parent=said).exists()
    for page in (owner, mei, li):
        assert page.locator("article.message-assistant").count() == 1
        assert page.locator("article.message-user").count() == 2
    # 李华's name round-trips too, in the group bar's people.
    assert li.locator("#group-bar .avatar[title='李华']").count() == 1

    SHOTS.mkdir(parents=True, exist_ok=True)
    for shot, person in (("owner", group.owner), ("mei", group.mei), ("li", group.li)):
        person.page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
    no_console_errors(group)


# --- 2. Joining mid-answer -------------------------------------------------------------


def test_a_member_who_opens_the_page_mid_answer_sees_it_so_far_then_the_rest(group):
    group.open(group.owner)
    group.open(group.mei)
    owner, mei, li = group.owner.page, group.mei.page, group.li.page

    send_message(owner, CODE, model=SLOW)
    answer = latest_answer_id(owner)
    wait_for_live_text(owner, answer, longer_than=40)
    group.open(group.li)

    for page in (li, owner, mei):
        wait_for_status(page, answer, "complete", timeout=30_000)
    final = body_text(owner, answer)
    seen = bubble_states(li, answer)
    # The page is drawn with the answer still streaming; the snapshot the socket brings
    # shows the text so far, and the rest streams in after it.
    assert seen[0].status == "streaming", seen[:3]
    # (The open tail may hold unfinished Markdown, an inline code span's backtick say,
    # so only the committed blocks must be a prefix of the final text; checked below.)
    streamed = [state for state in streaming_states(li, answer) if state.snapshots]
    assert streamed, f"李华's page never showed the answer streaming: {seen}"
    so_far = streamed[0]
    assert len(so_far.live_text) >= 20 and len(folded(so_far.blocks or "")) < len(final), so_far
    shown = {state.live_text for state in streamed}
    assert len(shown) >= 2, f"李华's page did not show the stream go on: {shown}"
    assert final == final_text(owner, answer)
    assert body_text(li, answer) == final == body_text(mei, answer)
    full = li.locator(f"#message-{answer}-body").inner_text()
    for state in seen:
        assert final.startswith(folded(state.blocks or "")), state
        assert not repeated_lines(f"{state.blocks}\n{state.tail}", full), state
    assert li.locator(f"article#message-{answer}").count() == 1
    assert author_of(li, CODE) == "Ming Zhao"
    no_console_errors(group)


# --- 3. Stop from another member -------------------------------------------------------


def test_a_member_stops_the_owners_answer_for_everyone(group):
    for person in group.people:
        group.open(person)
    owner, mei, li = group.owner.page, group.mei.page, group.li.page

    send_message(owner, CODE, model=SLOW)
    answer = latest_answer_id(owner)
    wait_for_live_text(mei, answer, longer_than=20)
    mei.locator(f"article#message-{answer} .stop-button").click()

    for page in (owner, mei, li):
        wait_for_status(page, answer, "cancelled")
        badge = page.locator(f"article#message-{answer} .message-meta .badge")
        assert badge.inner_text().strip() == "stopped"
        assert page.locator(f"article#message-{answer} .stop-button").count() == 0
    saved = Message.objects.get(pk=answer)
    assert saved.status == "cancelled" and saved.text
    kept = final_text(owner, answer)
    assert kept and "Adapt the body to your own data." not in kept  # stopped part-way
    for page in (owner, mei, li):
        assert body_text(page, answer) == kept
    no_console_errors(group)


# --- 4. What a member may do; leaving; removal -----------------------------------------


def test_members_header_and_dialog_leaving_and_removal(group):
    for person in group.people:
        group.open(person)
    owner, mei, li = group.owner.page, group.mei.page, group.li.page
    pk = group.conversation.pk

    actions = mei.locator("#conversation-actions")
    assert actions.get_by_role("button", name="Members", exact=True).is_visible()
    for owner_only in ("Delete", "Share", "Archive", "Rename", "Pin"):
        assert actions.get_by_role("button", name=owner_only, exact=True).count() == 0
    assert actions.locator("summary", has_text="Export").count() == 0
    owner_actions = owner.locator("#conversation-actions")
    for button in ("Members", "Delete", "Share", "Archive"):
        assert owner_actions.get_by_role("button", name=button, exact=True).count() == 1
    assert mei.locator(f"#sidebar-shared #conversation-link-{pk}").is_visible()

    # The member's dialog: the people, a Leave button, nothing to manage.
    mei.locator("#members-button").click()
    dialog = mei.locator("dialog#members-dialog")
    dialog.wait_for()
    names = [name.strip() for name in dialog.locator(".member-name").all_inner_texts()]
    assert names == ["Ming Zhao", "Mei Lin", "李华"]
    assert dialog.get_by_role("button", name="Leave").is_visible()
    assert dialog.get_by_role("button", name="Remove").count() == 0
    assert dialog.get_by_role("button", name="End the group").count() == 0
    assert dialog.locator("#member-search").count() == 0

    dialog.get_by_role("button", name="Leave").click()
    mei.wait_for_url(f"{group.url}/")
    wait_for_socket(mei)
    assert mei.locator("#sidebar-shared").count() == 1
    assert mei.locator(f"#conversation-link-{pk}").count() == 0
    assert mei.locator("#conversation-title").inner_text().strip() == "New chat"
    assert membership.member_ids(pk) == [group.li.user_id]

    # The owner removes 李华 while 李华 looks at the conversation.
    owner.locator("#members-button").click()
    panel = owner.locator("dialog#members-dialog")
    panel.wait_for()
    row = panel.locator(".member-row", has_text="李华")
    assert panel.locator(".member-row", has_text="Mei Lin").count() == 0
    row.get_by_role("button", name="Remove").click()
    li.get_by_role("heading", name="You are no longer in this conversation").wait_for(timeout=5_000)
    assert li.locator("#messages").count() == 0
    # Its sidebar entry goes too (the sidebar update follows the removal).
    li.locator(f"#conversation-link-{pk}").wait_for(state="detached", timeout=5_000)
    panel.locator(".member-row", has_text="李华").wait_for(state="detached")
    assert membership.member_ids(pk) == []
    assert not Conversation.objects.get(pk=pk).is_group
    no_console_errors(group)


# --- 5. Who is here, who is typing -----------------------------------------------------


def presence_of(page) -> list[str]:
    """The names in the page's presence bar (its avatars' titles), as shown."""
    return page.locator("#presence-bar:not([hidden]) .presence-people .avatar").evaluate_all(
        "(avatars) => avatars.map((avatar) => avatar.title)"
    )


def wait_for_presence(page, names: list[str]) -> None:
    """Wait until the page's presence bar shows exactly `names` (any order)."""
    page.wait_for_function(
        """(names) => {
            const bar = document.querySelector("#presence-bar:not([hidden])");
            if (!bar) return false;
            const shown = [...bar.querySelectorAll(".presence-people .avatar")]
                .map((avatar) => avatar.title).sort();
            return JSON.stringify(shown) === JSON.stringify([...names].sort());
        }""",
        arg=names,
    )


def test_everyone_sees_who_is_here_and_who_is_typing(group):
    for person in group.people:
        group.open(person)
    owner, mei, li = group.owner.page, group.mei.page, group.li.page
    everyone = ["Ming Zhao", "Mei Lin", "李华"]

    for page in (owner, mei, li):
        wait_for_presence(page, everyone)
        assert page.locator("#presence-bar .presence-count").inner_text().strip() == "3 here now"
    assert sorted(presence_of(li)) == sorted(everyone)
    assert li.locator("#presence-bar .avatar[title='李华']").inner_text() == "李华"

    # Mei types (in Chinese); the other two see it, Mei does not see herself.
    composer = mei.locator("#composer-text")
    composer.click()
    composer.press_sequentially("我先说一下进度", delay=50)
    for page in (owner, li):
        page.locator("#typing-line", has_text="Mei Lin is typing…").wait_for(timeout=5_000)
    assert mei.locator("#typing-line").inner_text().strip() == ""
    # Her message sent, the line empties at once (not after the 6 s of a typer's silence).
    composer.press("Enter")
    for page in (owner, li):
        question(page, "我先说一下进度").wait_for()
        page.locator("#typing-line", has_text="is typing").wait_for(state="detached", timeout=3_000)
    assert author_of(owner, "我先说一下进度") == "Mei Lin"

    # 李华 closes the page: the others' bars lose them.
    li.close()
    for page in (owner, mei):
        wait_for_presence(page, ["Ming Zhao", "Mei Lin"])
        assert page.locator("#presence-bar .presence-count").inner_text().strip() == "2 here now"
    assert owner.locator("#group-bar .avatar[title='李华']").count() == 1  # still a member
    no_console_errors(group)
