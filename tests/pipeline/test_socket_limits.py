"""What one chat socket may cost: frames per second, bytes left unread, repeated watches.

Issue #17, point 1, and the turn_started race on the Redis layer. The first tests drive
the consumer through the real ASGI stack; the last ones run the app in a Daphne
subprocess with a client that stops reading, since only a real transport buffers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import struct
from dataclasses import dataclass

import psutil
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from conversations.models import Conversation, Message
from conversations.pipeline import broadcast
from conversations.pipeline.consumers import CLOSE_BACKLOG
from tests.servers import PROJECT_DIR, start_server
from tests.support import attacks
from tests.support.chat import final_answer, open_socket, receive_until, send

pytestmark = pytest.mark.django_db(transaction=True)

GONE = "This conversation does not exist."
THROTTLED = "Too many requests at once."
UNREADABLE = "That request could not be read."
MISSING = {"action": "watch", "conversation": "9223372036854775807"}


async def frames_until_gone(socket) -> list[str]:
    """Ask for a missing conversation and return every frame up to its toast."""
    await send(socket, **MISSING)
    return await receive_until(socket, lambda frame: GONE in frame, timeout=10)


@sync_to_async
def messages() -> list[Message]:
    return list(Message.objects.order_by("pk"))


# --- Frames per second -------------------------------------------------------------


async def test_frames_beyond_the_burst_are_dropped_with_one_notice(gateway, user, settings):
    settings.CHAT_FRAMES_PER_SECOND, settings.CHAT_FRAME_BURST = 1, 5
    socket = await open_socket(user)
    for _ in range(5):
        await send(socket, action="watch", conversation="")

    await send(socket, action="send", conversation="", text="One too many")
    await send(socket, action="send", conversation="", text="Two too many")

    frames = await receive_until(socket, lambda frame: THROTTLED in frame)
    assert await socket.receive_nothing(timeout=0.3)
    assert THROTTLED not in "".join(frames[:-1])
    assert await messages() == []
    attacks.record(
        "frames past the per-socket burst",
        before="every frame handled",
        observed="dropped with one notice; no turn started",
    )
    await socket.disconnect()


async def test_frames_are_accepted_again_once_the_bucket_refills(gateway, user, settings):
    settings.CHAT_FRAMES_PER_SECOND, settings.CHAT_FRAME_BURST = 5, 2
    socket = await open_socket(user)
    for _ in range(3):
        await send(socket, action="watch", conversation="")
    await receive_until(socket, lambda frame: THROTTLED in frame)

    await asyncio.sleep(0.3)

    assert await frames_until_gone(socket)
    await socket.disconnect()


# --- The turn_started race ---------------------------------------------------------


async def finished_turn(socket) -> tuple[int, int, int]:
    await send(socket, action="send", conversation="", text="Hello")
    await receive_until(socket, final_answer)
    question, answer = await messages()
    return answer.conversation_id, question.pk, answer.pk


NO_SUCH_CONVERSATION = 999_999_999


async def late_turn_started(socket, user, conversation: int, question: int, answer: int):
    """Deliver the turn's `chat.turn_started` after its answer finished, as Redis may.

    Return what `socket` was sent up to the sidebar update of a conversation that no
    longer exists, broadcast right after it: a group's events arrive in order, so by
    then the late one has been handled.
    """
    await broadcast.turn_started(conversation, user_message_id=question, answer_id=answer)
    await broadcast.conversation_changed(user.pk, NO_SUCH_CONVERSATION)
    return await receive_until(socket, lambda frame: f"link-{NO_SUCH_CONVERSATION}" in frame)


async def frames_until_unreadable(socket) -> list[str]:
    """Send a frame the consumer cannot read and return every frame up to its toast."""
    await send(socket, action="no-such-action")
    return await receive_until(socket, lambda frame: UNREADABLE in frame, timeout=10)


def bubbles(frames: list[str], pk: int) -> int:
    return sum(len(re.findall(rf'<article id="message-{pk}"', frame)) for frame in frames)


async def test_a_late_turn_started_does_not_draw_the_senders_turn_again(gateway, user):
    socket = await open_socket(user)
    conversation, question, answer = await finished_turn(socket)

    frames = await late_turn_started(socket, user, conversation, question, answer)

    frames += await frames_until_unreadable(socket)
    assert bubbles(frames, question) == 0 and bubbles(frames, answer) == 0
    await socket.disconnect()


async def test_a_late_turn_started_does_not_repeat_a_watched_transcript(gateway, user):
    sender = await open_socket(user)
    conversation, question, answer = await finished_turn(sender)
    watcher = await open_socket(user)
    await send(watcher, action="watch", conversation=str(conversation))
    await receive_until(watcher, lambda frame: 'id="messages"' in frame)

    frames = await late_turn_started(watcher, user, conversation, question, answer)

    frames += await frames_until_unreadable(watcher)
    assert bubbles(frames, answer) == 0
    await sender.disconnect()
    await watcher.disconnect()


async def test_a_turn_started_in_another_tab_is_still_drawn(gateway, user):
    sender = await open_socket(user)
    conversation, _, _ = await finished_turn(sender)
    watcher = await open_socket(user)
    await send(watcher, action="watch", conversation=str(conversation))
    await receive_until(watcher, lambda frame: 'id="messages"' in frame)

    await send(sender, action="send", conversation=str(conversation), text="And again")
    frames = await receive_until(watcher, final_answer)

    answer = (await messages())[-1]
    assert bubbles(frames, answer.pk) >= 1
    await sender.disconnect()
    await watcher.disconnect()


# --- A client that stops reading, against a real Daphne ----------------------------


class SilentClient:
    """A websocket client that sends frames but reads nothing until asked to."""

    def __init__(self, url: str, cookie: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        # A small receive window: the server's buffers fill, not this process's.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws/chat/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {url}\r\nCookie: sessionid={cookie}\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        assert response.startswith(b"HTTP/1.1 101"), response

    def send(self, **frame) -> None:
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def read_all(self, timeout: float = 20) -> Reading:
        """Read until the server closes the socket, or until `timeout` passes."""
        self.sock.settimeout(timeout)
        data, reading = b"", Reading()
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            except TimeoutError:
                reading.ended = False
                return reading
            if not chunk:
                return reading
            data += chunk
            while len(data) >= 2:
                opcode, size, start = data[0] & 0x0F, data[1] & 0x7F, 2
                if size == 126:
                    size, start = struct.unpack(">H", data[2:4])[0], 4
                elif size == 127:
                    size, start = struct.unpack(">Q", data[2:10])[0], 10
                if len(data) < start + size:
                    break
                payload, data = data[start : start + size], data[start + size :]
                if opcode == 0x8:
                    if len(payload) >= 2:
                        reading.code = struct.unpack(">H", payload[:2])[0]
                    return reading
                reading.received += size
                reading.transcripts += payload.count(b'<div id="messages" hx-swap-oob')


@dataclass
class Reading:
    """What a silent client got once it read: bytes of text, transcripts, the close."""

    received: int = 0
    transcripts: int = 0
    code: int | None = None
    ended: bool = True  # the server closed the connection (or reset it)


@sync_to_async
def long_conversations(user, count: int, *, kilobytes: int) -> list[int]:
    """Conversations whose transcript is about `kilobytes` KB of HTML each."""
    ids = []
    for _ in range(count):
        conversation = Conversation.objects.create(owner=user, title="Long")
        parent = None
        for _ in range(kilobytes // 10):
            parent = Message.objects.create(
                conversation=conversation, parent=parent, role="user", text="word " * 2000
            )
        ids.append(conversation.pk)
    return ids


@pytest.fixture
def daphne(transactional_db, simulator_server):
    """Start the app in Daphne with the given settings; stop it after the test."""
    started = []

    def start(**env: str):
        log_dir = PROJECT_DIR / "test-artifacts"
        log_dir.mkdir(exist_ok=True)
        server = start_server(log_dir, extra_env={"GATEWAY": "simulator", **env})
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@sync_to_async
def cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def test_a_client_that_stops_reading_is_closed_at_the_backlog_bound(daphne, user):
    server = await sync_to_async(daphne)(
        CHAT_SOCKET_BACKLOG_BYTES="1000000", CHAT_FRAMES_PER_SECOND="1000", CHAT_FRAME_BURST="1000"
    )
    first, second = await long_conversations(user, 2, kilobytes=300)
    client = SilentClient(server.url, await cookie_for(user))
    memory = psutil.Process(server.process.pid)
    before = memory.memory_info().rss

    for _ in range(50):  # 100 transcripts of ~300 KB, none of them read
        client.send(action="watch", conversation=str(first))
        client.send(action="watch", conversation=str(second))
    await asyncio.sleep(4)
    grown = memory.memory_info().rss - before
    reading = await sync_to_async(client.read_all)(timeout=5)

    # The close frame waits behind the unread bytes, so a client that never reads sees
    # the connection dropped when the close handshake times out (a browser: 1006).
    assert reading.ended
    assert reading.code in (CLOSE_BACKLOG, None)
    assert reading.received < 4_000_000  # the bound, one frame and the kernel's share
    assert grown < 20_000_000, grown  # 30 MB were asked for
    attacks.record(
        "a signed-in client stops reading and asks for 100 transcripts of ~300 KB",
        before="1,500 watches grew Daphne from 347 to 1,020 MB, never given back; socket open",
        observed=f"Daphne grew {grown / 1e6:.1f} MB; connection closed after "
        f"{reading.received / 1e6:.1f} MB delivered",
    )


async def test_repeated_watches_of_an_unread_transcript_are_coalesced(daphne, user):
    server = await sync_to_async(daphne)(CHAT_FRAMES_PER_SECOND="1000", CHAT_FRAME_BURST="1000")
    (conversation,) = await long_conversations(user, 1, kilobytes=200)
    client = SilentClient(server.url, await cookie_for(user))

    for _ in range(20):
        client.send(action="watch", conversation=str(conversation))
    await asyncio.sleep(2)
    reading = await sync_to_async(client.read_all)(timeout=3)

    assert reading.transcripts == 1
    attacks.record(
        "20 watches of the same conversation, none read",
        before="20 transcripts rendered and queued",
        observed=f"{reading.transcripts} transcript",
    )


def test_every_close_code_is_one_daphne_can_send():
    """Autobahn, under Daphne, refuses a server close code outside 1000 and 3000-4999.

    A code it refuses raises instead of closing, so the socket would stay open: 1013
    ("try again later") did exactly that.
    """
    from conversations.pipeline import consumers

    codes = {name: value for name, value in vars(consumers).items() if name.startswith("CLOSE_")}

    assert codes
    assert {name for name, code in codes.items() if not 3000 <= code <= 4999} == set()
