"""The limit relay: the least a server can do per turn, measured beside the app.

Served by Daphne exactly as the app is (`daphne bench.relay:application`), it does
what a turn needs on the wire and nothing else: per websocket message it shows the turn,
opens a streamed request to the same simulator with httpx, and relays the text deltas,
coalesced every 50 ms, as small escaped HTML fragments in the app's markup (so the same
load clients read both). No Django, no database, no Markdown, no templates. Whatever
the app spends beyond this is the app's own work, which is why the bench reports
app/limit ratios rather than absolute figures alone.

Configured by the environment: RELAY_GATEWAY (the simulator's /v1 URL), RELAY_API_KEY,
RELAY_MODEL, and RELAY_LOG (a file that receives one JSON line per finished answer,
{"answer": id, "response": gateway response id}, so the bench can match each answer
to the simulator's record of when it sent each token).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import os
import time

import httpx

FLUSH_INTERVAL = 0.05
answer_ids = itertools.count(1)
_client: httpx.AsyncClient | None = None
_log = None


def gateway() -> httpx.AsyncClient:
    """Return the process's one gateway client (created in the running loop, pooled)."""
    global _client
    if _client is None:
        _client = httpx.AsyncClient(
            base_url=os.environ["RELAY_GATEWAY"],
            headers={"Authorization": f"Bearer {os.environ['RELAY_API_KEY']}"},
            timeout=httpx.Timeout(60.0, connect=10.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=2000),
        )
    return _client


def record(answer_id: int, response_id: str) -> None:
    global _log
    if _log is None and os.environ.get("RELAY_LOG"):
        _log = open(os.environ["RELAY_LOG"], "a", buffering=1)  # noqa: SIM115
    if _log is not None:
        _log.write(json.dumps({"answer": answer_id, "response": response_id}) + "\n")


def shown(answer_id: int) -> str:
    """The turn accepted and an empty answer bubble, in the markup the clients look for."""
    return (
        f'<div id="turn-accepted" hidden data-conversation="{answer_id}"></div>'
        f'<article id="message-{answer_id}" class="message message-assistant status-streaming">'
        "</article>"
    )


def appended(answer_id: int, text: str) -> str:
    return f'<div hx-swap-oob="beforeend:#message-{answer_id}-blocks">{html.escape(text)}</div>'


def finished(answer_id: int, status: str) -> str:
    return (
        f'<article id="message-{answer_id}" class="message message-assistant status-{status}" '
        'hx-swap-oob="true"></article>'
    )


class Coalescer:
    """Sends the first delta at once, then at most one fragment per FLUSH_INTERVAL."""

    def __init__(self, answer_id: int, send) -> None:
        self.answer_id = answer_id
        self.send = send
        self.pending: list[str] = []
        self.last_flush = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task] = set()

    def add(self, delta: str) -> None:
        self.pending.append(delta)
        if self.timer is not None:
            return
        wait = self.last_flush + FLUSH_INTERVAL - time.monotonic()
        if wait <= 0:
            self._flush_soon()
        else:
            self.timer = asyncio.get_running_loop().call_later(wait, self._flush_soon)

    def _flush_soon(self) -> None:
        self.timer = None
        task = asyncio.ensure_future(self.flush())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.pending:
            return
        text, self.pending = "".join(self.pending), []
        self.last_flush = time.monotonic()
        await self.send(appended(self.answer_id, text))

    async def close(self) -> None:
        await self.flush()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


async def relay_turn(frame: dict, send) -> None:
    """One turn: show it, stream the gateway's answer through, mark it finished."""
    answer_id = next(answer_ids)
    await send(shown(answer_id))
    body = {"model": os.environ.get("RELAY_MODEL", "sim-chat"), "input": frame.get("text", "")}
    coalescer = Coalescer(answer_id, send)
    status, response_id = "failed", ""
    try:
        async with gateway().stream("POST", "/responses", json={**body, "stream": True}) as reply:
            async for line in reply.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                kind = event.get("type")
                if kind == "response.output_text.delta":
                    coalescer.add(event["delta"])
                elif kind == "response.created":
                    response_id = event["response"]["id"]
                elif kind == "response.completed":
                    response_id = response_id or event["response"]["id"]
                    status = "complete"
                    break
                elif kind == "response.failed":
                    break
    except httpx.HTTPError:
        status = "failed"
    await coalescer.close()
    if status == "complete" and response_id:
        record(answer_id, response_id)
    await send(finished(answer_id, status))


async def application(scope, receive, send) -> None:
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    turns: set[asyncio.Task] = set()

    async def send_text(text: str) -> None:
        await send({"type": "websocket.send", "text": text})

    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            frame = json.loads(message.get("text") or "{}")
            task = asyncio.ensure_future(relay_turn(frame, send_text))
            turns.add(task)
            task.add_done_callback(turns.discard)
        elif message["type"] == "websocket.disconnect":
            for task in turns:
                task.cancel()
            return
