"""Small ASGI helpers: read a request, send JSON or an event stream, OpenAI-shaped errors."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Iterable, MutableMapping
from typing import Any

__all__ = [
    "ApiError",
    "Receive",
    "Scope",
    "Send",
    "header",
    "read_body",
    "run_until_disconnect",
    "send_bytes",
    "send_json",
    "sse_frame",
    "start_response",
    "wait_for_disconnect",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ApiError(Exception):
    """An error reply in the exact shape real gateways send: `{"error": {...}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        raw_body: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.code = code
        self.headers = list(headers)
        self.raw_body = raw_body  # for gateways that answer with HTML or plain text
        self.content_type = content_type

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    async def send(self, send: Send) -> None:
        """Send this error as the whole HTTP reply."""
        if self.raw_body is not None:
            await send_bytes(send, self.status, self.raw_body, self.content_type, self.headers)
        else:
            await send_json(send, self.status, self.body(), self.headers)


def header(scope: Scope, name: str) -> str | None:
    """Return a request header's value (case-insensitive), or None."""
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


async def read_body(receive: Receive) -> bytes:
    """Return the whole request body."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone away."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def run_until_disconnect(work: Coroutine[Any, Any, None], receive: Receive) -> bool:
    """Run `work` until it ends or the client goes away; return whether it ended.

    Servers do not stop a handler when the client leaves, so a stream (or a hang) would
    otherwise go on generating for nobody.
    """
    worker = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait({worker, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        worker.cancel()
        watcher.cancel()
        await asyncio.wait({worker, watcher})
    if worker.cancelled():
        return False
    worker.result()  # re-raise anything the work raised
    return True


def _standard_headers(content_type: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", content_type.encode()),
        (b"x-request-id", f"req_{secrets.token_hex(16)}".encode()),
        (b"openai-version", b"2020-10-01"),
        (b"openai-processing-ms", b"12"),
    ]


async def start_response(
    send: Send, status: int, content_type: str, headers: Iterable[tuple[str, str]] = ()
) -> None:
    """Send the status line and headers."""
    all_headers = _standard_headers(content_type)
    all_headers += [(key.encode("latin-1"), value.encode("latin-1")) for key, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Send a complete reply."""
    await start_response(send, status, content_type, headers)
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(
    send: Send, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()
) -> None:
    """Send a complete JSON reply."""
    await send_bytes(send, status, json.dumps(payload).encode(), "application/json", headers)


def sse_frame(event: dict[str, Any]) -> bytes:
    """Return one server-sent event: the `event:` line, the `data:` line, a blank line."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()
