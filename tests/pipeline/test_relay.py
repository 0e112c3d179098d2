"""One channel-layer message per process per flush: the hub relays answers generated in
another process to its own sockets (issue #23: twenty people watching one answer live).

Most tests run two pretend processes on the test's one event loop: each has its own
`Hub` (its own worker channel, relays and generations), and they share the suite's
channel layer (in memory, or Redis with REDIS_URL) as two Daphne processes share Redis.
The sockets are the real consumer through the real ASGI stack. The layer's `send` is
counted, so the tests see what crosses "processes". The last test does the same with a
real second Daphne process on Redis.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections import defaultdict

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from chatweb.asgi import application
from conversations.models import AnswerMode, Conversation, ConversationMember, Message
from conversations.pipeline import live
from conversations.pipeline.consumers import ChatConsumer
from conversations.pipeline.fanout import FanOut
from conversations.pipeline.live import Fragment, Hub
from conversations.rendering.markdown import render_markdown
from tests.pipeline.test_live_languages import (
    CHINESE,
    ENGLISH,
    SLOW_REASONER,
    assert_final_in_chinese,
    assert_final_in_english,
    final_after,
    model_pk,
)
from tests.support.chat import (
    ORIGIN,
    LiveBubble,
    final_answer,
    receive_until,
    send,
    session_cookie,
    streamed_text,
    visible_text,
)

pytestmark = pytest.mark.django_db(transaction=True)

STORY = "Tell me a story"
SLOW = "sim-chat+fault=slow:20"  # about 1.3 s for the story: several 200 ms flushes
SLOWER = "sim-chat+fault=slow:8"  # about 3 s: time to join mid-answer
TRANSCRIPT = 'id="messages"'
SNAPSHOT = 'class="message-body markdown" hx-swap-oob="true"'

# --- Two processes on one event loop ------------------------------------------------------

# Which pretend process the running code belongs to. The ASGI app sets it for each socket;
# the tasks a socket starts (its generations, its hub's listener) inherit it.
PROCESS: contextvars.ContextVar[str] = contextvars.ContextVar("process", default="A")


class HubPerProcess:
    """Stands in for `live._hubs` (one hub per event loop): one hub per pretend process."""

    def __init__(self) -> None:
        self.hubs: dict[str, Hub] = {}

    def get(self, loop) -> Hub | None:
        return self.hubs.get(PROCESS.get())

    def __setitem__(self, loop, hub: Hub) -> None:
        self.hubs[PROCESS.get()] = hub


def app_in(process: str):
    """Return the chat app as served by pretend process `process`."""

    async def app(scope, receive, send):
        PROCESS.set(process)
        await application(scope, receive, send)

    return app


class Traffic:
    """What crosses processes: every `live.fragment` and watch request sent on the layer,
    and every remote flush the generating side made (a batch sent to other processes)."""

    def __init__(self) -> None:
        self.fragments: list[tuple[str, dict]] = []  # (channel, event)
        self.requests: list[tuple[str, dict]] = []
        self.flushes = 0

    def deltas(self) -> list[tuple[str, dict]]:
        return [(channel, event) for channel, event in self.fragments if not event["reply"]]

    def replies(self) -> list[tuple[str, dict]]:
        return [(channel, event) for channel, event in self.fragments if event["reply"]]

    def watches(self) -> list[dict]:
        return [event for _, event in self.requests if event["type"] == "generation.watch"]


class Applied:
    """What each socket took onto its page: (seq, snapshot, final) of each fragment, by
    (process, the socket's user, answer). Each test's sockets are one per user."""

    def __init__(self) -> None:
        self.taken: dict[tuple[str, str, int], list[tuple[int, bool, bool]]] = defaultdict(list)

    def of(self, process: str, answer_id: int) -> dict[str, list[tuple[int, bool, bool]]]:
        """Return, by user, what the sockets of `process` took of the answer."""
        return {
            username: taken
            for (where, username, answer), taken in self.taken.items()
            if where == process and answer == answer_id
        }


@pytest.fixture
def processes(monkeypatch):
    hubs = HubPerProcess()
    monkeypatch.setattr(live, "_hubs", hubs)
    return hubs


@pytest.fixture
def traffic(monkeypatch) -> Traffic:
    seen = Traffic()
    layer = get_channel_layer()
    send_on_layer = layer.send

    async def counted(channel: str, message: dict) -> None:
        if message["type"] == "live.fragment":
            seen.fragments.append((channel, message))
        elif message["type"].startswith("generation."):
            seen.requests.append((channel, message))
        await send_on_layer(channel, message)

    monkeypatch.setattr(layer, "send", counted)
    send_remote = FanOut._send_remote

    def counted_flush(self) -> None:
        if self._remote_batch and self.remote_watchers:
            seen.flushes += 1
        send_remote(self)

    monkeypatch.setattr(FanOut, "_send_remote", counted_flush)
    return seen


@pytest.fixture
def applied(monkeypatch) -> Applied:
    record = Applied()
    apply = ChatConsumer.apply

    def recorded(self, fragment: Fragment) -> None:
        queued = self.outbox.qsize()
        apply(self, fragment)
        if self.outbox.qsize() > queued:
            key = (PROCESS.get(), self.user.username, fragment.message_id)
            record.taken[key].append((fragment.seq, fragment.snapshot, fragment.final))

    monkeypatch.setattr(ChatConsumer, "apply", recorded)
    return record


async def open_in(process: str, user, accept_language: bytes = ENGLISH) -> WebsocketCommunicator:
    headers = [ORIGIN, (b"cookie", await session_cookie(user))]
    headers.append((b"accept-language", accept_language))
    socket = WebsocketCommunicator(app_in(process), "/ws/chat/", headers=headers)
    assert (await socket.connect())[0]
    return socket


@sync_to_async
def slow_model(upstream_id: str) -> int:
    from conversations.models import ModelChoice

    choice, _ = ModelChoice.objects.get_or_create(
        upstream_id=upstream_id, defaults={"label": upstream_id}
    )
    return choice.pk


@sync_to_async
def make_group(owner, members) -> None:
    """Make the owner's only conversation a group with `members`, answering every message."""
    conversation = Conversation.objects.get(owner=owner)
    conversation.is_group = True
    conversation.answer_mode = AnswerMode.EVERY
    conversation.save(update_fields=["is_group", "answer_mode"])
    for member in members:
        ConversationMember.objects.create(conversation=conversation, user=member, invited_by=owner)


@sync_to_async
def latest_answer() -> Message:
    return Message.objects.filter(role="assistant").latest("pk")


async def group_conversation(owner_socket, owner, members) -> tuple[int, int]:
    """Answer a first turn on the owner's socket; make it a group; return (conversation,
    first answer)."""
    await send(owner_socket, action="send", conversation="", text="Hello")
    await receive_until(owner_socket, final_answer)
    first = await latest_answer()
    await make_group(owner, members)
    return first.conversation_id, first.pk


async def show(sockets, conversation: int) -> None:
    for socket in sockets:
        await send(socket, action="watch", conversation=conversation)
    for socket in sockets:
        await receive_until(socket, lambda frame: TRANSCRIPT in frame)


async def members(make_user, count: int) -> list:
    return [await sync_to_async(make_user)(f"member{number}") for number in range(count)]


def assert_whole_and_in_order(taken: list[tuple[int, bool, bool]]) -> None:
    """A socket took a snapshot (or, at the very end, the final bubble), then every later
    fragment once, in order, ending with the final one: no gap, no duplicate."""
    assert taken, "the socket took nothing"
    first_seq, first_is_snapshot, first_is_final = taken[0]
    assert first_is_snapshot or first_is_final, str(taken)
    seqs = [seq for seq, _, _ in taken]
    assert seqs == list(range(first_seq, first_seq + len(taken))), str(taken)
    assert taken[-1][2] and not any(final for _, _, final in taken[:-1]), str(taken)
    assert not any(snapshot for _, snapshot, _ in taken[1:]), str(taken)


def live_text(frames: list[str], answer_id: int) -> list[str]:
    """Return the answer's visible text after each frame before the final bubble."""
    bubble, texts = LiveBubble(answer_id), []
    for frame in frames[:-1]:
        bubble.apply(frame)
        texts.append(bubble.text)
    return texts


async def saved_text(answer_id: int) -> str:
    answer = await sync_to_async(Message.objects.get)(pk=answer_id)
    assert answer.status == "complete"
    return visible_text(render_markdown(answer.text))


# --- Through the consumer, two processes --------------------------------------------------


async def test_one_message_per_flush_reaches_the_watching_process_whatever_its_sockets(
    gateway, user, make_user, processes, traffic, applied
):
    owner = await open_in("A", user)
    people = await members(make_user, 4)
    conversation, first = await group_conversation(owner, user, people)
    watchers = [await open_in("B", person) for person in people]
    await show(watchers, conversation)

    await send(
        owner, action="send", conversation=conversation, text=STORY, model=await slow_model(SLOW)
    )
    await receive_until(owner, final_after(first))
    for socket in watchers:
        await receive_until(socket, final_after(first))

    relay_channel = processes.hubs["B"].worker_channel
    assert {channel for channel, _ in traffic.fragments} == {relay_channel}
    assert traffic.flushes >= 3  # the answer streamed for several flushes
    assert len(traffic.deltas()) == traffic.flushes  # one message per flush, not per socket
    sent = [entry[0] for _, event in traffic.deltas() for entry in event["fragments"]]
    assert len(sent) == len(set(sent))  # each fragment crossed once
    # Each watch asked for a snapshot for the sockets waiting then, never one per flush.
    assert len(traffic.watches()) == len(traffic.replies()) <= len(watchers)
    assert all(event["reply_channel"] == relay_channel for event in traffic.watches())
    await disconnect(owner, *watchers)


async def test_every_socket_sees_the_whole_answer_once_with_no_gap(
    gateway, user, make_user, processes, traffic, applied
):
    owner = await open_in("A", user)
    people = await members(make_user, 5)
    conversation, first = await group_conversation(owner, user, people)
    here = await open_in("A", people[0])  # a member in the generating process
    there = [await open_in("B", person) for person in people[1:]]
    await show([here, *there], conversation)

    await send(
        owner, action="send", conversation=conversation, text=STORY, model=await slow_model(SLOW)
    )
    answer_id, text = None, None
    for socket in (owner, here, *there):
        frames = await receive_until(socket, final_after(first))
        answer_id = answer_id or (await latest_answer()).pk
        text = text or await saved_text(answer_id)
        states = live_text(frames, answer_id)
        assert states and states[-1] == text
        assert all(text.startswith(state) for state in states), states
        assert len([state for state in states if state and state != text]) >= 2  # it streamed

    relayed, local = applied.of("B", answer_id), applied.of("A", answer_id)
    assert sorted(relayed) == [person.username for person in people[1:]]
    assert sorted(local) == sorted([user.username, people[0].username])
    for taken in [*relayed.values(), *local.values()]:
        assert_whole_and_in_order(taken)
    await disconnect(owner, here, *there)


async def test_a_socket_joining_mid_answer_gets_a_snapshot_then_only_later_fragments(
    gateway, user, make_user, processes, traffic, applied
):
    owner = await open_in("A", user)
    early, late = await members(make_user, 2)
    conversation, first = await group_conversation(owner, user, [early, late])
    watching = await open_in("B", early)
    await show([watching], conversation)

    await send(
        owner, action="send", conversation=conversation, text=STORY, model=await slow_model(SLOWER)
    )
    await receive_until(watching, streamed_text)
    await receive_until(watching, streamed_text)  # well under way
    joining = await open_in("B", late)
    await send(joining, action="watch", conversation=conversation)
    joining_frames = await receive_until(joining, final_after(first))
    watching_frames = await receive_until(watching, final_after(first))

    answer_id = (await latest_answer()).pk
    text = await saved_text(answer_id)
    taken = applied.of("B", answer_id)
    early_taken, late_taken = taken[early.username], taken[late.username]
    for each in (early_taken, late_taken):
        assert_whole_and_in_order(each)
    assert late_taken[0][1] and late_taken[0][0] > early_taken[0][0] + 1  # well under way
    # The page's view: the snapshot, before any delta, then every state a prefix.
    shown = [frame for frame in joining_frames[:-1] if streamed_text(frame) or SNAPSHOT in frame]
    assert shown and SNAPSHOT in shown[0]
    for frames in (joining_frames, watching_frames):
        states = live_text(frames, answer_id)
        assert states[-1] == text and all(text.startswith(state) for state in states)
    # The second socket asked for a snapshot of its own, on the same subscription.
    assert len(traffic.watches()) == 2 and len(traffic.replies()) == 2
    assert len(traffic.deltas()) == traffic.flushes
    await disconnect(owner, watching, joining)


async def test_two_languages_in_one_process_each_get_their_own_words(
    gateway, user, make_user, processes, traffic, applied
):
    owner = await open_in("A", user)
    english_reader, chinese_reader = await members(make_user, 2)
    conversation, first = await group_conversation(owner, user, [english_reader, chinese_reader])
    english = await open_in("B", english_reader, ENGLISH)
    chinese = await open_in("B", chinese_reader, CHINESE)
    await show([english, chinese], conversation)

    await send(
        owner,
        action="send",
        conversation=conversation,
        text="Why is the sky blue?",
        model=str(await model_pk(SLOW_REASONER)),
        summary="auto",
    )
    english_frames = await receive_until(english, final_after(first))
    chinese_frames = await receive_until(chinese, final_after(first))
    await receive_until(owner, final_after(first))

    assert "Thinking…" in before_final(english_frames) or "Thought process" in before_final(
        english_frames
    )
    assert "思考" in before_final(chinese_frames)
    assert "Thinking…" not in before_final(chinese_frames)
    assert "Thought process" not in before_final(chinese_frames)
    assert "思考" not in before_final(english_frames)
    assert_final_in_english(english_frames[-1])
    assert_final_in_chinese(chinese_frames[-1])
    # Still one message per flush, carrying both languages where the words differ.
    assert {channel for channel, _ in traffic.fragments} == {processes.hubs["B"].worker_channel}
    assert len(traffic.deltas()) == traffic.flushes
    assert all(event["languages"] == ["en", "zh-hans"] for _, event in traffic.deltas())
    await disconnect(owner, english, chinese)


def before_final(frames: list[str]) -> str:
    """Return the frames before the final bubble, joined."""
    return "\n".join(frames[:-1])


async def disconnect(*sockets: WebsocketCommunicator) -> None:
    for socket in sockets:
        await socket.disconnect()


# --- The relay itself ---------------------------------------------------------------------


class Tab:
    """A watcher as the hub sees one: a language, and what it was handed."""

    def __init__(self, language: str = "en") -> None:
        self.language = language
        self.taken: list[Fragment] = []

    def deliver(self, fragment: Fragment) -> None:
        self.taken.append(fragment)

    def seqs(self) -> list[tuple[int, bool]]:
        return [(fragment.seq, fragment.snapshot) for fragment in self.taken]


def message(
    seq: int, *, snapshot: bool = False, final: bool = False, reply: bool = False, html=None
):
    return {
        "type": "live.fragment",
        "message_id": 7,
        "languages": ["en"],
        "reply": reply,
        "fragments": [[seq, html or f"<p>{seq}</p>", snapshot, final]],
    }


async def requests_on(channel: str, *, quiet: float = 0.2) -> list[dict]:
    """Return what was sent to `channel` until it stays quiet for `quiet` seconds."""
    layer, received = get_channel_layer(), []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), quiet))
        except TimeoutError:
            return received


async def relayed(hub: Hub, *events: dict) -> None:
    """Send `events` to the hub's worker channel and let it hand them over."""
    for event in events:
        await get_channel_layer().send(hub.worker_channel, event)
    await asyncio.sleep(0.1)


async def test_watchers_sharing_a_relay_ask_once_and_take_no_delta_before_a_snapshot():
    hub, owner = Hub(), await get_channel_layer().new_channel()
    tabs = [Tab(), Tab(), Tab()]
    for tab in tabs:
        await hub.follow_remote(7, owner, tab)

    asked = await requests_on(owner)
    assert [event["type"] for event in asked] == ["generation.watch"]
    assert asked[0]["reply_channel"] == hub.worker_channel and asked[0]["languages"] == ["en"]
    await relayed(hub, message(3), message(2, snapshot=True, reply=True), message(3), message(4))
    assert all(tab.seqs() == [(2, True), (3, False), (4, False)] for tab in tabs)


async def test_a_gap_asks_for_one_fresh_snapshot_for_every_watcher():
    hub, owner = Hub(), await get_channel_layer().new_channel()
    tabs = [Tab(), Tab(), Tab()]
    for tab in tabs:
        await hub.follow_remote(7, owner, tab)
    await relayed(hub, message(1, snapshot=True, reply=True), message(2))
    await requests_on(owner)

    await relayed(hub, message(4), message(5))  # 3 never came
    asked = await requests_on(owner)
    assert [event["type"] for event in asked] == ["generation.watch"]  # once, not per tab
    await relayed(hub, message(5, snapshot=True, reply=True), message(6))
    assert all(tab.seqs() == [(1, True), (2, False), (5, True), (6, False)] for tab in tabs)


async def test_a_late_watcher_gets_its_snapshot_and_the_others_keep_their_deltas():
    hub, owner = Hub(), await get_channel_layer().new_channel()
    early, late = Tab(), Tab()
    await hub.follow_remote(7, owner, early)
    await relayed(hub, message(1, snapshot=True, reply=True), message(2))
    await hub.follow_remote(7, owner, late)
    assert [event["type"] for event in await requests_on(owner)] == ["generation.watch"] * 2

    # The answer to the second watch was taken after 3 was flushed, and overtook it.
    await relayed(hub, message(3, snapshot=True, reply=True), message(3), message(4))
    assert early.seqs() == [(1, True), (2, False), (3, False), (4, False)]
    assert late.seqs() == [(3, True), (4, False)]


async def test_a_snapshot_that_never_comes_is_asked_for_again(monkeypatch):
    # The watch reached the generating process before the generation started there.
    monkeypatch.setattr(live, "SNAPSHOT_WAIT_SECONDS", 0.05)
    hub, owner = Hub(), await get_channel_layer().new_channel()
    first, second = Tab(), Tab()
    await hub.follow_remote(7, owner, first)
    assert [event["type"] for event in await requests_on(owner)] == ["generation.watch"]

    await hub.follow_remote(7, owner, second)
    assert [event["type"] for event in await requests_on(owner)] == ["generation.watch"]
    await relayed(hub, message(4, snapshot=True, reply=True))
    assert first.seqs() == second.seqs() == [(4, True)]


async def test_a_published_snapshot_replaces_every_watchers_body():
    # The answer started over (the gateway forgot the conversation): every page redraws.
    hub, owner = Hub(), await get_channel_layer().new_channel()
    tabs = [Tab(), Tab()]
    for tab in tabs:
        await hub.follow_remote(7, owner, tab)
    await relayed(hub, message(1, snapshot=True, reply=True), message(2))
    await relayed(hub, message(2, snapshot=True), message(3))
    assert all(tab.seqs() == [(1, True), (2, False), (2, True), (3, False)] for tab in tabs)


async def test_a_new_language_asks_for_a_snapshot_in_every_language_read_here():
    hub, owner = Hub(), await get_channel_layer().new_channel()
    english, chinese = Tab("en"), Tab("zh-hans")
    await hub.follow_remote(7, owner, english)
    await relayed(hub, message(1, snapshot=True, reply=True))
    await hub.follow_remote(7, owner, chinese)
    asked = await requests_on(owner)
    assert [event.get("languages") for event in asked] == [["en"], ["en", "zh-hans"]]

    both = {"en": "<p>Thinking…</p>", "zh-hans": "<p>思考中…</p>"}
    reply = {**message(1, snapshot=True, reply=True, html=both), "languages": ["en", "zh-hans"]}
    await relayed(hub, reply, {**message(2, html=both), "languages": ["en", "zh-hans"]})
    assert [fragment.html_for("zh-hans") for fragment in chinese.taken] == ["<p>思考中…</p>"] * 2
    assert english.seqs() == [(1, True), (2, False)]  # the second snapshot was not its
    assert english.taken[-1].html_for("en") == "<p>Thinking…</p>"


async def test_the_last_watcher_to_leave_unwatches_and_the_final_bubble_ends_the_relay():
    hub, owner = Hub(), await get_channel_layer().new_channel()
    first, second = Tab(), Tab()
    await hub.follow_remote(7, owner, first)
    await hub.follow_remote(7, owner, second)
    await requests_on(owner)

    hub.detach(first)
    assert await requests_on(owner) == []
    hub.unfollow_remote(second, 7)
    asked = await requests_on(owner)
    assert [event["type"] for event in asked] == ["generation.unwatch"]
    assert 7 not in hub.relays

    await hub.follow_remote(7, owner, first)
    await relayed(hub, message(1, snapshot=True, reply=True), message(2, final=True))
    assert first.seqs() == [(1, True), (2, False)] and first.taken[-1].final
    assert 7 not in hub.relays
    assert [event["type"] for event in await requests_on(owner)] == ["generation.watch"]


# --- A real second process ----------------------------------------------------------------

needs_redis = pytest.mark.skipif(
    not getattr(settings, "REDIS_URL", ""),
    reason="a second process shares the channel layer only through Redis (set REDIS_URL)",
)


@needs_redis
async def test_a_real_second_process_gets_one_message_per_flush_for_all_its_sockets(
    gateway, user, make_user, servers, traffic
):
    from websockets.asyncio.client import connect

    owner = await open_in("A", user)
    people = await members(make_user, 6)
    conversation, first = await group_conversation(owner, user, people)
    server = await sync_to_async(servers)()
    url = server.url.replace("http://", "ws://") + "/ws/chat/"
    sockets = []
    try:
        for person in people:
            headers = {"Cookie": (await session_cookie(person)).decode(), "Origin": server.url}
            sockets.append(
                await connect(url, additional_headers=headers, origin=None, ping_interval=None)
            )
        for socket in sockets:
            await socket.send(json.dumps({"action": "watch", "conversation": conversation}))
            await receive_from(socket, lambda frame: TRANSCRIPT in frame)

        model = await slow_model(SLOW)
        await send(owner, action="send", conversation=conversation, text=STORY, model=str(model))
        await receive_until(owner, final_after(first))
        finals = [await receive_from(socket, final_after(first)) for socket in sockets]
    finally:
        for socket in sockets:
            await socket.close()

    answer_id = (await latest_answer()).pk
    text = await saved_text(answer_id)
    for frames in finals:
        states = live_text(frames, answer_id)
        assert states[-1] == text and all(text.startswith(state) for state in states), frames
    channels = {channel for channel, _ in traffic.fragments}
    assert len(channels) == 1, server.log()  # the other process's hub, not its six sockets
    assert len(traffic.deltas()) == traffic.flushes >= 3
    assert len(traffic.watches()) == 0  # requests come from the other process, not from here


async def receive_from(socket, predicate, *, timeout: float = 20.0) -> list[str]:
    frames: list[str] = []
    async with asyncio.timeout(timeout):
        while not frames or not predicate(frames[-1]):
            frames.append(await socket.recv())
    return frames
