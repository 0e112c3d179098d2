"""An httpx transport that runs an ASGI app in-process and streams its body as it is sent.

`httpx.ASGITransport` waits for the whole response before returning it, which turns a
token stream into one late burst. This transport hands each body chunk to the reader as
soon as the app sends it, so the embedded simulator streams like a real gateway.

It also behaves like a network where it matters to the client:
- the client's read timeout applies while waiting for the response start and for each
  chunk (so a hanging app raises `httpx.ReadTimeout`);
- closing the response (or cancelling the reader) tells the app the client disconnected
  and cancels the app's task, so nothing keeps generating for nobody;
- an app that crashes looks like a dropped connection (`httpx.RemoteProtocolError`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx

__all__ = ["StreamingASGITransport"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

# Chunks the app may send ahead of the reader before its `send` waits (back-pressure).
BUFFERED_CHUNKS = 64


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Serve httpx requests from an ASGI app in the same event loop."""

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        read_timeout = request.extensions.get("timeout", {}).get("read")
        exchange = _Exchange(self.app, _scope(request, self.client), body, read_timeout)
        status, headers = await exchange.start(request)
        return httpx.Response(
            status, headers=headers, stream=exchange, extensions={"http_version": b"HTTP/1.1"}
        )


class _Exchange(httpx.AsyncByteStream):
    """One request/response between httpx and the app: the app task and the chunk queue."""

    _END = object()

    def __init__(self, app: ASGIApp, scope: Scope, body: bytes, read_timeout: float | None) -> None:
        self._app = app
        self._scope = scope
        self._body = body
        self._read_timeout = read_timeout
        self._body_sent = False
        self._disconnected = asyncio.Event()
        self._started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._chunks: asyncio.Queue[object] = asyncio.Queue(BUFFERED_CHUNKS)
        self._finished = False
        self._task: asyncio.Task[None] | None = None

    async def start(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Run the app and wait (within the read timeout) for its response start."""
        self._task = asyncio.create_task(self._run(), name="asgi-app")
        try:
            async with asyncio.timeout(self._read_timeout):
                return await asyncio.shield(self._started)
        except TimeoutError:
            await self.aclose()
            raise httpx.ReadTimeout("The app sent no response in time.", request=request) from None
        except BaseException:
            await self.aclose()
            raise

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                async with asyncio.timeout(self._read_timeout):
                    chunk = await self._chunks.get()
            except TimeoutError:
                raise httpx.ReadTimeout("The app sent nothing in time.") from None
            if chunk is self._END:
                return
            if isinstance(chunk, BaseException):
                raise httpx.RemoteProtocolError("The app failed mid-response.") from chunk
            yield chunk  # type: ignore[misc]

    async def aclose(self) -> None:
        """Tell the app the client went away and wait for its task to stop."""
        self._disconnected.set()
        task = self._task
        if task is None or task.done():
            return
        if not self._finished:
            task.cancel()
        # wait() never raises the task's own error, but does let our cancellation through.
        await asyncio.wait({task})

    async def _run(self) -> None:
        try:
            await self._app(self._scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("The in-process ASGI app failed.")
            if not self._started.done():
                failure = httpx.RemoteProtocolError("The app failed before responding.")
                failure.__cause__ = exc
                self._started.set_exception(failure)
            else:
                await self._chunks.put(exc)
            return
        if not self._started.done():
            self._started.set_exception(
                httpx.RemoteProtocolError("The app finished without sending a response.")
            )
        elif not self._finished:
            self._finished = True
            await self._chunks.put(self._END)

    async def _receive(self) -> Message:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._disconnected.is_set() or self._finished:
            return
        if message["type"] == "http.response.start":
            headers = [(bytes(key), bytes(value)) for key, value in message.get("headers", [])]
            self._started.set_result((message["status"], headers))
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            if chunk:
                await self._chunks.put(bytes(chunk))
            if not message.get("more_body", False):
                self._finished = True
                await self._chunks.put(self._END)


def _scope(request: httpx.Request, client: tuple[str, int]) -> Scope:
    url = request.url
    default_port = 443 if url.scheme == "https" else 80
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "root_path": "",
        "headers": [(key.lower(), value) for key, value in request.headers.raw],
        "client": client,
        "server": (url.host, url.port or default_port),
        "extensions": {},
    }
