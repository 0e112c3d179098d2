"""The sending tab sees its turn before the database has it (issue #19, point 2).

The question and an answer waiting are drawn from the frame and sent at once; the save
(a transaction that may queue behind every other turn's) follows, and its bubbles
replace the drawn ones before any fragment of the answer. A save that fails leaves the
question on the page as an error, and the text goes back to the composer.

The tests hold the save on its database thread (the real `prepare_send`, started only
when the test lets it) to see what the page has before it runs.
"""

from __future__ import annotations

import re
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from conversations.models import Message, Quota
from conversations.pipeline import fragments, starts
from tests.support.chat import final_answer, open_socket, receive_until, send, visible_text

pytestmark = pytest.mark.django_db(transaction=True)

PENDING = re.compile(r'<article id="(turn-[0-9a-f]+-\d+)-question"')


@pytest.fixture
def held_save(monkeypatch):
    """Hold every save on its database thread until the test sets the returned event."""
    release = threading.Event()
    save = starts.prepare_send

    def held(**kwargs):
        assert release.wait(timeout=10), "the test never let the save run"
        return save(**kwargs)

    monkeypatch.setattr(starts, "prepare_send", held)
    return release


@pytest.fixture
def failing_save(monkeypatch):
    """Make the next save fail as a database that went away does; later ones run."""
    save = starts.prepare_send
    failures = [OperationalError("server closed the connection unexpectedly")]

    def failing(**kwargs):
        if failures:
            raise failures.pop()
        return save(**kwargs)

    monkeypatch.setattr(starts, "prepare_send", failing)


@sync_to_async
def saved_messages() -> list[Message]:
    return list(Message.objects.order_by("pk"))


def pending_key(frames: list[str]) -> str:
    return next(found.group(1) for frame in frames if (found := PENDING.search(frame)))


def refused(frame: str) -> bool:
    return "composer-error" in frame


async def test_the_question_and_a_waiting_answer_arrive_before_the_save(gateway, user, held_save):
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Hello <b>there</b>")
    first = await socket.receive_from(timeout=5)

    assert "Hello &lt;b&gt;there&lt;/b&gt;" in first
    assert 'class="message message-assistant status-streaming" data-pending' in first
    assert await saved_messages() == []
    held_save.set()
    await receive_until(socket, final_answer)
    await socket.disconnect()


async def test_the_drawn_question_is_the_html_the_save_stores(gateway, user, held_save):
    socket = await open_socket(user)
    text = "  <script>alert(1)</script>\r\n  & a second line  "

    await send(socket, action="send", conversation="", text=text)
    first = await socket.receive_from(timeout=5)
    held_save.set()
    await receive_until(socket, final_answer)

    question = (await saved_messages())[0]
    assert f'<div class="message-body">{question.rendered_html}</div>' in first
    assert "<script>" not in first
    await socket.disconnect()


async def test_the_saved_bubbles_replace_the_drawn_ones_before_the_answer_streams(
    gateway, user, held_save
):
    socket = await open_socket(user)
    await send(socket, action="send", conversation="", text="Tell me something")
    key = pending_key([await socket.receive_from(timeout=5)])

    held_save.set()
    frames = await receive_until(socket, final_answer)

    question, answer = await saved_messages()
    swap = next(i for i, frame in enumerate(frames) if f"outerHTML:#{key}-answer" in frame)
    assert f'id="message-{question.pk}"' in frames[swap]
    assert f'hx-swap-oob="outerHTML:#{key}-question"' in frames[swap]
    assert not any(f"message-{answer.pk}" in frame for frame in frames[:swap])
    await socket.disconnect()


async def test_a_new_chat_learns_its_address_after_the_save(gateway, user, held_save):
    socket = await open_socket(user)
    await send(socket, action="send", conversation="", text="A new chat")
    first = await socket.receive_from(timeout=5)

    held_save.set()
    frames = await receive_until(socket, final_answer)

    assert 'id="turn-accepted"' not in first
    conversation = (await saved_messages())[0].conversation_id
    assert any(f'data-conversation="{conversation}"' in frame for frame in frames)
    await socket.disconnect()


async def test_a_refused_send_keeps_the_question_as_an_error_with_its_text(gateway, user):
    await sync_to_async(Quota.objects.create)(user=user, tokens_per_day=0)
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Over my quota")
    frames = await receive_until(socket, refused)

    key = pending_key(frames)
    failed = frames[-1]
    assert f'<article id="{key}-question" class="message message-user status-failed"' in failed
    assert "Over my quota" in visible_text(failed)
    assert f'hx-swap-oob="delete:#{key}-answer"' in failed
    assert 'data-restore="1"' in failed  # the page puts the text back in the composer
    assert await saved_messages() == []
    await socket.disconnect()


async def test_a_database_failure_keeps_the_text_and_sending_again_works(
    gateway, user, failing_save
):
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Is the database there?")
    failed = (await receive_until(socket, refused))[-1]
    await send(socket, action="send", conversation="", text="Is the database there?")
    await receive_until(socket, final_answer)

    assert "status-failed" in failed
    assert "Is the database there?" in visible_text(failed)
    assert "lost its database" in failed
    assert 'data-restore="1"' in failed
    questions = [message.text for message in await saved_messages() if message.role == "user"]
    assert questions == ["Is the database there?"]
    await socket.disconnect()


async def test_another_tab_draws_only_the_saved_turn(gateway, user):
    sender = await open_socket(user)
    await send(sender, action="send", conversation="", text="First")
    await receive_until(sender, final_answer)
    conversation = (await saved_messages())[0].conversation_id
    other = await open_socket(user)
    await send(other, action="watch", conversation=str(conversation))
    await receive_until(other, lambda frame: 'id="messages"' in frame)

    await send(sender, action="send", conversation=str(conversation), text="Second")
    frames = await receive_until(other, final_answer)

    assert any("Second" in frame and 'class="message message-user' in frame for frame in frames)
    assert not any("data-pending" in frame for frame in frames)
    await receive_until(sender, final_answer)
    await sender.disconnect()
    await other.disconnect()


def test_drawing_the_turn_from_the_frame_escapes_everything():
    pending = fragments.PendingTurn("turn-ab-1", '<img src=x onerror="alert(1)">', None)

    html = fragments.pending_turn_html(pending)

    assert "<img" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert 'data-sent-from=""' in html
