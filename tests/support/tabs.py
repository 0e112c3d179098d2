"""A signed-in tab's chat websocket against a real server process (tests/servers.py).

The process tests (reliability, shutdown) drive Daphne subprocesses as the page does,
with the `websockets` client, from an event loop of their own (`arun`) so the test
body never shares one with Playwright's or pytest-asyncio's.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading

from django.test import Client

from tests.support.chat import final_answer

# An answer bubble as it is sent: its message id and its status.
ANSWER = re.compile(r'<article id="message-(\d+)" class="message message-assistant status-(\w+)')


def arun(coroutine):
    """Run a coroutine to its end on a fresh event loop in its own thread."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:  # handed back to the test thread
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def session_id(user) -> str:
    """Sign `user` in; return the session cookie's value for a server on the test database."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class Tab:
    """One signed-in tab: the chat websocket of `server`, driven with the page's frames."""

    def __init__(self, server, session: str) -> None:
        self.server = server
        self.session = session
        self.ws = None
        self.frames: list[str] = []

    async def __aenter__(self) -> Tab:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            self.server.url.replace("http://", "ws://") + "/ws/chat/",
            additional_headers={"Cookie": f"sessionid={self.session}", "Origin": self.server.url},
            origin=None,
            ping_interval=None,
            open_timeout=10,
            close_timeout=2,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def send(self, **frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def until(self, predicate, timeout: float = 15.0) -> str:
        """Read frames until one satisfies `predicate`; return that frame."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.recv()
                self.frames.append(frame)
                if predicate(frame):
                    return frame

    async def turn(self, text: str, *, conversation="", model: int | None = None) -> int:
        """Send a message and wait for its answer's final frame; return the answer's id."""
        extra = {"model": str(model)} if model else {}
        await self.send(action="send", conversation=str(conversation), text=text, **extra)
        frame = await self.until(final_answer)
        return int(ANSWER.search(frame).group(1))
