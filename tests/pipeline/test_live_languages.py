"""Live answers in each watcher's language: two tabs of one user, one reading English and
one Chinese, follow the same streaming answer, in this process and from another one.

The Markdown is the same for everyone (code copy buttons included: the page labels
them); the notices beside it ("Thinking…", "Searching the web…") and the final bubble's
buttons are words, and each tab must get them in its own language, whichever tab started
the turn.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from chatweb.asgi import application
from conversations.models import Message, ModelChoice
from conversations.pipeline import runs
from tests.support.chat import (
    ORIGIN,
    final_answer,
    receive_until,
    send,
    session_cookie,
    streamed_text,
)

pytestmark = pytest.mark.django_db(transaction=True)

ENGLISH = b"en-GB,en;q=0.9"
CHINESE = b"zh-CN,zh;q=0.9"
SLOW_REASONER = "sim-reasoner+fault=slow:40"
SNAPSHOT = 'class="message-body markdown" hx-swap-oob="true"'


async def open_tab(user, accept_language: bytes) -> WebsocketCommunicator:
    """Connect a tab whose browser asks for `accept_language` (no saved preference)."""
    headers = [ORIGIN, (b"cookie", await session_cookie(user))]
    headers.append((b"accept-language", accept_language))
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    assert (await socket.connect())[0]
    return socket


@sync_to_async
def model_pk(upstream_id: str) -> int:
    """Return a catalogue entry for a simulator model, made like sim-reasoner if new."""
    found = ModelChoice.objects.filter(upstream_id=upstream_id).first()
    if found is None:
        found = ModelChoice.objects.get(upstream_id="sim-reasoner")
        found.pk, found.upstream_id, found.label = None, upstream_id, upstream_id
        found.is_default = False
        found.save()
    return found.pk


@sync_to_async
def latest_answer() -> Message:
    return Message.objects.filter(role="assistant").latest("pk")


async def first_turn(socket) -> tuple[int, int]:
    """Answer one question on `socket`; return the conversation and the answer's id."""
    await send(socket, action="send", conversation="", text="Hello")
    await receive_until(socket, final_answer)
    answer = await latest_answer()
    return answer.conversation_id, answer.pk


async def shared_conversation(starter, watcher) -> tuple[int, int]:
    """Start a conversation on `starter` and show it on `watcher` too."""
    conversation, first = await first_turn(starter)
    await send(watcher, action="watch", conversation=str(conversation))
    await receive_until(watcher, lambda frame: 'id="messages"' in frame)
    return conversation, first


async def ask_with_reasoning(socket, conversation: int) -> None:
    """Ask a question the model thinks about first (slowly: the notice is seen live)."""
    await send(
        socket,
        action="send",
        conversation=str(conversation),
        text="Why is the sky blue?",
        model=str(await model_pk(SLOW_REASONER)),
        summary="auto",
    )


def final_after(answer_id: int):
    """Return a predicate for the frame that makes an answer newer than `answer_id` final.

    Not any final bubble: a tab may be sent the first turn's again (redrawn or appended
    when the channel layer's turn_started arrives after that answer ended).
    """
    final = re.compile(r'<article id="message-(\d+)" class="message message-assistant status-(\w+)')

    def finishes_a_newer_answer(frame: str) -> bool:
        return any(
            int(pk) > answer_id and status != "streaming" for pk, status in final.findall(frame)
        )

    return finishes_a_newer_answer


def live(frames: list[str]) -> str:
    """Return the frames before the final bubble, joined."""
    return "\n".join(frames[:-1])


def assert_final_in_english(frame: str) -> None:
    assert ">Copy</button>" in frame and ">Regenerate</button>" in frame
    assert "复制" not in frame and "重新生成" not in frame


def assert_final_in_chinese(frame: str) -> None:
    assert ">复制</button>" in frame and ">重新生成</button>" in frame
    assert ">Copy</button>" not in frame and ">Regenerate</button>" not in frame


async def test_live_thinking_and_final_bubble_in_each_tabs_language(gateway, user):
    english = await open_tab(user, ENGLISH)
    chinese = await open_tab(user, CHINESE)
    conversation, first = await shared_conversation(english, chinese)

    await ask_with_reasoning(english, conversation)
    english_frames = await receive_until(english, final_after(first))
    chinese_frames = await receive_until(chinese, final_after(first))

    assert "Thinking…" in live(english_frames) and "思考中…" not in live(english_frames)
    assert "思考中…" in live(chinese_frames) and "Thinking…" not in live(chinese_frames)
    assert_final_in_english(english_frames[-1])
    assert_final_in_chinese(chinese_frames[-1])
    await english.disconnect()
    await chinese.disconnect()


async def test_search_steps_follow_the_watchers_language_not_the_starters(gateway, user):
    chinese = await open_tab(user, CHINESE)
    english = await open_tab(user, ENGLISH)
    conversation, first = await shared_conversation(chinese, english)

    await send(
        chinese, action="send", conversation=str(conversation), text="Look up htmx", web_search="on"
    )
    chinese_frames = await receive_until(chinese, final_after(first))
    english_frames = await receive_until(english, final_after(first))

    # A fast stream may coalesce "Searching…" into "Searched…": either is in the language.
    english_steps = [frame for frame in english_frames[:-1] if "search-step" in frame]
    chinese_steps = [frame for frame in chinese_frames[:-1] if "search-step" in frame]
    assert english_steps and all("the web" in frame for frame in english_steps)
    assert not any("网上搜索" in frame for frame in english_steps)
    assert chinese_steps and all("网上搜索" in frame for frame in chinese_steps)
    assert_final_in_english(english_frames[-1])
    assert_final_in_chinese(chinese_frames[-1])
    await chinese.disconnect()
    await english.disconnect()


async def test_tab_joining_mid_stream_gets_a_snapshot_in_its_language(gateway, user):
    english = await open_tab(user, ENGLISH)
    conversation, first = await first_turn(english)
    await ask_with_reasoning(english, conversation)
    await receive_until(english, streamed_text)

    chinese = await open_tab(user, CHINESE)
    await send(chinese, action="watch", conversation=str(conversation))
    chinese_frames = await receive_until(chinese, final_after(first))
    english_frames = await receive_until(english, final_after(first))

    snapshot = next(frame for frame in chinese_frames if SNAPSHOT in frame)
    assert "思考过程" in snapshot and "Thought process" not in snapshot
    assert "思考" not in "".join(english_frames)
    assert_final_in_chinese(chinese_frames[-1])
    assert_final_in_english(english_frames[-1])
    await english.disconnect()
    await chinese.disconnect()


async def test_code_copy_buttons_stream_without_words_in_every_tab(gateway, user):
    # Rendered Markdown is the same for every reader: a code block's copy button has no
    # words, and each page labels it in its own language (tests/rendering/test_copy_labels).
    chinese = await open_tab(user, CHINESE)
    english = await open_tab(user, ENGLISH)
    conversation, first = await shared_conversation(chinese, english)

    await send(
        chinese,
        action="send",
        conversation=str(conversation),
        text="Write a python function to sum numbers",
    )
    chinese_frames = await receive_until(chinese, final_after(first))
    english_frames = await receive_until(english, final_after(first))

    wordless = '<button type="button" class="copy-button"></button>'
    for frames in (chinese_frames, english_frames):
        buttons = re.findall(r'<button[^>]*class="copy-button".*?</button>', live(frames))
        assert buttons and set(buttons) == {wordless}
    await chinese.disconnect()
    await english.disconnect()


# --- Watchers in another process ---------------------------------------------------------


async def watch_from_another_process(
    answer: Message, language: str | None = None, *, languages: list[str] | None = None
) -> str:
    """Ask the answer's process to feed a new channel, as another process's hub does
    (`languages`), or as a process that names one `language` (or none) does."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    event = {"type": "generation.watch", "message_id": answer.pk, "reply_channel": channel}
    if language is not None:
        event["language"] = language
    if languages is not None:
        event["languages"] = languages
    await layer.send(await sync_to_async(runs.worker_channel)(answer.pk), event)
    return channel


async def fragments_until_final(channel: str, events: list[dict] | None = None) -> list[list]:
    """Collect the `live.fragment` batches sent to `channel` until the final bubble (and
    the messages themselves into `events`)."""
    layer = get_channel_layer()
    received: list[list] = []
    async with asyncio.timeout(20):
        while not (received and received[-1][3]):
            event = await layer.receive(channel)
            assert event["type"] == "live.fragment"
            received.extend(event["fragments"])
            if events is not None:
                events.append(event)
    return received


async def test_remote_watchers_get_batches_in_the_language_they_asked_for(gateway, user):
    english = await open_tab(user, ENGLISH)
    conversation, first = await first_turn(english)
    await ask_with_reasoning(english, conversation)
    await receive_until(english, lambda frame: "Thinking…" in frame)
    answer = await latest_answer()

    chinese_channel = await watch_from_another_process(answer, "zh-hans")
    unsaid_channel = await watch_from_another_process(answer, None)
    chinese = await fragments_until_final(chinese_channel)
    unsaid = await fragments_until_final(unsaid_channel)
    await receive_until(english, final_after(first))

    chinese_html = [html for _, html, _, _ in chinese]
    assert chinese[0][2] and "思考" in chinese_html[0]  # the snapshot comes first
    assert not any("Thinking…" in html or "Thought process" in html for html in chinese_html)
    assert_final_in_chinese(chinese_html[-1])
    # A process that does not say (an older one, mid-deploy) gets the turn's language.
    assert "Thinking…" in unsaid[0][1] or "Thought process" in unsaid[0][1]
    assert_final_in_english(unsaid[-1][1])
    await english.disconnect()


async def test_a_process_reading_two_languages_gets_both_in_one_message_per_flush(gateway, user):
    english = await open_tab(user, ENGLISH)
    conversation, first = await first_turn(english)
    await ask_with_reasoning(english, conversation)
    await receive_until(english, lambda frame: "Thinking…" in frame)
    answer = await latest_answer()

    channel = await watch_from_another_process(answer, languages=["zh-hans", "en"])
    events: list[dict] = []
    received = await fragments_until_final(channel, events)
    await receive_until(english, final_after(first))

    assert all(event["languages"] == ["en", "zh-hans"] for event in events)
    assert events[0]["reply"] and not any(event["reply"] for event in events[1:])
    snapshot, final = received[0][1], received[-1][1]
    assert received[0][2] and "思考" in snapshot["zh-hans"]
    assert "Thinking…" in snapshot["en"] or "Thought process" in snapshot["en"]
    assert_final_in_chinese(final["zh-hans"])
    assert_final_in_english(final["en"])
    # Plain text deltas read the same in every language: one string, rendered once.
    assert any(isinstance(html, str) for _, html, _, _ in received[1:-1])
    seqs = [seq for seq, _, _, _ in received[1:]]
    assert seqs == sorted(set(seqs))  # each fragment once, in order
    await english.disconnect()


needs_redis = pytest.mark.skipif(
    not getattr(settings, "REDIS_URL", ""),
    reason="a second process shares the channel layer only through Redis (set REDIS_URL)",
)


@needs_redis
async def test_tab_on_another_process_streams_in_its_own_language(gateway, user):
    from websockets.asyncio.client import connect

    from tests.servers import PROJECT_DIR, start_server

    english = await open_tab(user, ENGLISH)
    conversation, first = await first_turn(english)
    log_dir = PROJECT_DIR / "test-artifacts"
    log_dir.mkdir(exist_ok=True)
    gateway_env = {"OPENAI_BASE_URL": gateway.base_url, "OPENAI_API_KEY": gateway.api_key}
    server = await sync_to_async(start_server)(log_dir, extra_env=gateway_env)
    session = (await session_cookie(user)).decode()
    try:
        async with connect(
            server.url.replace("http://", "ws://") + "/ws/chat/",
            additional_headers={
                "Cookie": session,
                "Origin": server.url,
                "Accept-Language": CHINESE.decode(),
            },
            origin=None,
            ping_interval=None,
            open_timeout=10,
        ) as chinese:
            await chinese.send(json.dumps({"action": "watch", "conversation": str(conversation)}))
            await receive_from_process(chinese, lambda frame: 'id="messages"' in frame)

            await ask_with_reasoning(english, conversation)
            chinese_frames = await receive_from_process(chinese, final_after(first))
            await receive_until(english, final_after(first))
    finally:
        await sync_to_async(server.stop)()

    assert "思考" in live(chinese_frames), server.log()
    assert "Thinking…" not in live(chinese_frames)
    assert "Thought process" not in live(chinese_frames)
    assert_final_in_chinese(chinese_frames[-1])


async def receive_from_process(socket, predicate, *, timeout: float = 20.0) -> list[str]:
    frames: list[str] = []
    async with asyncio.timeout(timeout):
        while not frames or not predicate(frames[-1]):
            frames.append(await socket.recv())
    return frames
