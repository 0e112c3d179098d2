"""Drive the real chat websocket the way the page does, for consumer tests."""

from __future__ import annotations

import asyncio
import json
import re
from html import unescape

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from chatweb.asgi import application

ORIGIN = (b"origin", b"http://localhost")


@sync_to_async
def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(user) -> WebsocketCommunicator:
    """Connect as `user` through the full ASGI stack (Origin check, session auth)."""
    headers = [ORIGIN]
    if user is not None:
        headers.append((b"cookie", await session_cookie(user)))
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


async def send(socket: WebsocketCommunicator, **frame) -> None:
    await socket.send_to(text_data=json.dumps(frame))


async def receive_until(socket, predicate, *, timeout: float = 15.0) -> list[str]:
    """Collect frames until one satisfies `predicate`; return them all."""
    frames: list[str] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no matching frame in {timeout} s; got {frames[-3:]}")
        frame = await socket.receive_from(timeout=remaining)
        frames.append(frame)
        if predicate(frame):
            return frames


def final_answer(frame: str) -> bool:
    """True for the frame that replaces an answer bubble with its final form."""
    return bool(
        re.search(
            r'<article id="message-\d+" class="message message-assistant status-(?!streaming)',
            frame,
        )
    )


def visible_text(html: str) -> str:
    """Return the text a reader sees in an HTML fragment, whitespace folded."""
    text = re.sub(r"<template.*?</template>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(unescape(text).split())


class LiveBubble:
    """Apply a streaming answer's fragments as htmx would, to check for gaps and repeats."""

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self.blocks = ""
        self.tail = ""

    def apply(self, frame: str) -> None:
        pk = self.message_id
        body = re.search(
            rf'<div id="message-{pk}-blocks">(.*?)</div>'
            rf'<div id="message-{pk}-tail" class="stream-tail">(.*?)</div></div>',
            frame,
            re.S,
        )
        if body:
            self.blocks, self.tail = body.group(1), body.group(2)
        appended = re.search(
            rf'<div hx-swap-oob="beforeend:#message-{pk}-blocks">(.*?)</div>'
            rf'\s*<div id="message-{pk}-tail"',
            frame,
            re.S,
        )
        if appended:
            self.blocks += appended.group(1)
        tail = re.search(
            rf'<div id="message-{pk}-tail" class="stream-tail" hx-swap-oob="true">(.*?)</div>\s*$',
            frame,
            re.S,
        )
        if tail:
            self.tail = tail.group(1)

    @property
    def text(self) -> str:
        return visible_text(self.blocks + self.tail)


def streamed_text(frame: str) -> bool:
    """True for a live fragment (snapshot or delta) that carries some answer text."""
    live = 'class="stream-tail" hx-swap-oob="true"' in frame or (
        'class="message-body markdown" hx-swap-oob="true"' in frame
    )
    return live and bool(visible_text(frame))
