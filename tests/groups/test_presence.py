"""Who is here and who is typing, without a socket: the roster, its events, its HTML."""

from __future__ import annotations

import json

import pytest

from conversations.groups import presence
from conversations.groups.people import display_name, initials
from conversations.groups.presence import Here, Roster, Throttle
from conversations.pipeline import fragments
from conversations.pipeline.frames import is_typing
from tests.support.chat import visible_text

MEI = Here(2, "Mei Lin", "ML")
LI = Here(3, "Li", "L")
WANG = Here(4, "王小明", "小明")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def roster(clock) -> Roster:
    return Roster(7, clock=clock)


def test_a_person_with_two_tabs_is_here_once(roster):
    assert roster.saw("tab-1", MEI) is True
    assert roster.saw("tab-2", MEI) is False  # nothing new to draw
    assert roster.saw("tab-3", LI) is True

    assert roster.people() == [LI, MEI]  # by name
    assert roster.left("tab-1") is False  # still here in her other tab
    assert roster.people() == [LI, MEI]
    assert roster.left("tab-2") is True
    assert roster.people() == [LI]
    assert roster.left("never-seen") is False


def test_a_socket_not_heard_from_for_a_minute_is_dropped_but_never_our_own(roster, clock):
    roster.saw("mine", LI)
    roster.saw("crashed", MEI)
    roster.saw("alive", WANG)

    clock.now += presence.HEARTBEAT_SECONDS
    roster.saw("alive", WANG)  # a heartbeat
    assert roster.expire(keep="mine") is False

    clock.now += presence.EXPIRY_SECONDS - presence.HEARTBEAT_SECONDS + 1
    assert roster.expire(keep="mine") is True
    assert roster.people() == [LI, WANG]
    assert set(roster.sockets) == {"mine", "alive"}


def test_expiry_is_read_when_the_roster_is_made(monkeypatch, clock):
    monkeypatch.setattr(presence, "EXPIRY_SECONDS", 1.0)
    roster = Roster(7, clock=clock)
    roster.saw("crashed", MEI)
    clock.now += 1.5
    assert roster.expire() is True
    assert roster.people() == []


def test_others_are_anyone_but_the_person_asking(roster):
    roster.saw("tab-1", MEI)
    roster.saw("tab-2", MEI)
    assert roster.others(MEI.user_id) is False
    roster.saw("tab-3", LI)
    assert roster.others(MEI.user_id) is True


def test_a_renamed_person_is_drawn_again(roster):
    roster.saw("tab-1", MEI)
    assert roster.saw("tab-1", Here(2, "Mei Chen", "MC")) is True
    assert roster.people() == [Here(2, "Mei Chen", "MC")]


def test_typing_lasts_six_seconds_after_the_last_keystroke(roster, clock):
    assert roster.typing(MEI.user_id, MEI.name) is True
    clock.now += 4
    assert roster.typing(MEI.user_id, MEI.name) is False  # still typing: nothing to draw
    assert roster.typing(LI.user_id, LI.name) is True
    assert roster.typing_names() == ["Mei Lin", "Li"]  # first to start first
    assert roster.next_typing_end() == clock.now + presence.TYPING_SECONDS

    clock.now += presence.TYPING_SECONDS - 0.5
    assert roster.expire_typing() is False
    clock.now += 0.5
    assert roster.expire_typing() is True
    assert roster.typing_names() == []
    assert roster.next_typing_end() is None


def test_a_sent_message_ends_typing_at_once(roster):
    roster.typing(MEI.user_id, MEI.name)
    assert roster.stopped_typing(MEI.user_id) is True
    assert roster.stopped_typing(MEI.user_id) is False
    assert roster.typing_names() == []


def test_a_typer_who_leaves_or_vanishes_stops_typing(roster, clock):
    roster.saw("mei", MEI)
    roster.saw("li", LI)
    roster.typing(MEI.user_id, MEI.name)
    roster.typing(LI.user_id, LI.name)

    roster.left("mei")
    assert roster.typing_names() == ["Li"]
    clock.now += presence.EXPIRY_SECONDS + 1
    roster.typing(LI.user_id, LI.name)
    roster.expire()
    assert roster.typing_names() == []


def test_the_throttle_lets_one_through_every_interval(clock):
    throttle = Throttle(3.0, clock=clock)
    assert [throttle.ready() for _ in range(100)].count(True) == 1
    clock.now += 2.9
    assert throttle.ready() is False
    clock.now += 0.1
    assert throttle.ready() is True


def test_events_carry_the_conversation_the_channel_and_the_person():
    hello = presence.hello_event(7, "chan!1", WANG)
    assert hello == {
        "type": "room.hello",
        "conversation_id": 7,
        "channel": "chan!1",
        "user_id": 4,
        "name": "王小明",
        "initials": "小明",
    }
    assert presence.person_of(hello) == WANG
    assert presence.bye_event(7, "chan!1") == {
        "type": "room.bye",
        "conversation_id": 7,
        "channel": "chan!1",
    }
    assert presence.typing_event(7, "c", MEI, typing=False)["typing"] is False
    assert presence.person_of({"user_id": "2", "name": "x", "initials": "x"}) is None
    assert presence.person_of({"user_id": True, "name": "x", "initials": "x"}) is None
    long = presence.person_of({"user_id": 2, "name": "n" * 1000, "initials": "i" * 50})
    assert len(long.name) == presence.MAX_NAME_CHARS
    assert len(long.initials) == presence.MAX_INITIALS_CHARS


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Mei Lin", "ML"), ("王小明", "小明"), ("欧阳娜娜", "娜娜"), ("李", "李"), ("li", "L")],
)
def test_initials_for_the_presence_bar(name, expected):
    # A CJK name shows its last two characters: the given name, as Chinese apps do.
    assert initials(name) == expected


def test_a_chinese_name_is_written_without_a_space(make_user):
    wang = make_user("wang", first_name="王", last_name="小明")
    assert display_name(wang) == "王小明"
    assert initials(display_name(wang)) == "小明"


# --- HTML ---------------------------------------------------------------------------


def test_the_presence_bar_shows_each_person_once_with_a_count():
    html = fragments.presence_html([LI, MEI, WANG], conversation_id=7)
    assert 'id="presence-bar"' in html and 'hx-swap-oob="true"' in html
    assert 'data-presence-for="7"' in html
    assert '<span class="avatar" title="Mei Lin">ML</span>' in html
    assert '<span class="avatar" title="王小明">小明</span>' in html
    assert "3 here now" in visible_text(html)
    assert " hidden" not in html


def test_the_presence_bar_shows_five_faces_and_counts_the_rest():
    people = [Here(n, f"Person {n}", f"P{n}") for n in range(1, 8)]
    html = fragments.presence_html(people, conversation_id=7)
    assert html.count('class="avatar"') == 5
    assert "+2" in html
    assert "7 here now" in visible_text(html)
    assert "Person 7" in html  # named in the count's title and for screen readers


def test_the_page_starts_with_an_empty_bar_and_typing_line():
    from django.template.loader import render_to_string

    bar = render_to_string("conversations/chat.html#presence_bar", {})
    line = render_to_string("conversations/chat.html#typing_line", {})
    assert '<div id="presence-bar" class="presence-bar" hidden></div>' in bar
    assert '<div id="typing-line" class="typing-line"></div>' in line


@pytest.mark.parametrize(
    ("names", "text"),
    [
        (["Mei"], "Mei is typing…"),
        (["Mei", "Li"], "Mei and Li are typing…"),
        (["Mei", "Li", "Wang"], "3 people are typing…"),
        (["王小明"], "王小明 is typing…"),
        ([], ""),
    ],
)
def test_the_typing_line(names, text):
    html = fragments.typing_html(names, conversation_id=7)
    assert 'id="typing-line"' in html and 'data-presence-for="7"' in html
    assert visible_text(html) == text


def test_the_typing_line_escapes_names():
    html = fragments.typing_html(["<b>Mei</b>"], conversation_id=7)
    assert "<b>" not in html and "&lt;b&gt;Mei&lt;/b&gt; is typing…" in html


def test_a_typing_frame_is_known_without_reading_a_long_one():
    assert is_typing(json.dumps({"action": "typing", "conversation": "12"}))
    assert is_typing('{"action":"typing"}')
    assert not is_typing('{"action":"send","text":"typing"}')
    assert not is_typing(json.dumps({"action": "typing", "pad": "x" * 200}))
    assert not is_typing("not json")
    assert not is_typing("[1]")
    assert not is_typing(None)
