"""`ResponsesClient`: talk to an OpenAI-compatible `/responses` endpoint over one httpx pool.

One httpx client is shared by every call so connections are pooled and kept alive; its
connections are aiohttp's (`network.py`), which costs a streamed event half the CPU of
httpx's own. Settings (base URL, key, timeouts) come in through the constructor, never
from Django. Use a client in one event loop only, and close it there.

Retries happen only before the first event: connection failures and HTTP 429/502/503/504
are retried with jittered exponential backoff (a 429's `retry-after` is honoured up to
`Backoff.max_retry_after`; longer waits are raised at once). Once a stream has started,
nothing is retried, because the user has already seen part of the answer.

Stream endings: the stream yields terminal events (`ResponseCompleted`,
`ResponseIncomplete`, `ResponseFailed`, `ErrorEvent`) and then stops; failures are not
raised, so the caller keeps the partial answer and decides (`event.as_error()` gives the
matching exception). A stream that ends without a terminal event, loses its connection or
sends unreadable data raises `StreamBrokenError`; a read timeout raises
`GatewayTimeoutError`.

Every failed call is logged once, at WARNING, on this module's logger, with what the
gateway said (`GatewayError.detail_for_staff()`): an HTTP or connection failure when the
client gives up retrying, a `response.failed` or `error` event when the stream yields it
(or a failed response from `create`), and a stream that breaks or times out.

The API key travels only in the Authorization header. It is never logged, and gateway
error text is redacted before it reaches an exception or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from httpx_sse import EventSource, ServerSentEvent, aconnect_sse

from . import fields
from .classify import error_from_http
from .errors import (
    GatewayError,
    GatewayTimeoutError,
    NoModelListError,
    NotFoundError,
    RateLimitedError,
    StreamBrokenError,
    UnavailableError,
)
from .events import ErrorEvent, Event, ResponseFailed
from .fields import MalformedField
from .network import http_client
from .request import ResponseRequest
from .response import Response
from .sse import EventStreamParser

__all__ = ["Backoff", "ResponsesClient", "Timeouts"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "chatweb-gateway/1"
# After the terminal event, read the few bytes that close the HTTP body so the
# connection goes back to the pool, but never wait long for a gateway that lingers.
DRAIN_SECONDS = 0.5
# How long an idle gateway connection is kept for reuse.
KEEPALIVE_SECONDS = 4.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait to connect, between bytes read, to send, and for a pooled connection."""

    connect: float = 5.0
    read: float = 120.0
    write: float = 30.0
    pool: float = 10.0

    def to_httpx(self) -> httpx.Timeout:
        """Return the equivalent httpx timeout."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between retries: jittered exponential, with a small cap."""

    initial: float = 0.5
    maximum: float = 4.0
    max_retry_after: float = 20.0

    def delay(self, retry_number: int, retry_after: float | None = None) -> float | None:
        """Return seconds to wait before retry `retry_number` (0-based), or None to give up."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        ceiling = min(self.maximum, self.initial * 2**retry_number)
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class _Failure:
    """One failed attempt, and whether trying again could help."""

    error: GatewayError
    retryable: bool


class ResponsesClient:
    """Client for `POST {base_url}/responses` and the stored-response endpoints."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeouts: Timeouts = Timeouts(),  # frozen, so one shared default is safe
        max_retries: int = 2,
        max_connections: int = 1000,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._max_retries = max_retries
        self._backoff = backoff
        default_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if api_key:
            default_headers["Authorization"] = f"Bearer {api_key}"
        # Every streaming answer holds a connection for its whole length, so httpx's
        # default of 100 would queue the 101st answer of a busy process for the pool
        # timeout and then fail it. (aiohttp keeps idle connections for `keepalive_expiry`
        # without a count limit; unlike httpcore it does not scan them per request.)
        # Idle connections go before the 5 s after which uvicorn-served gateways (LiteLLM,
        # the simulator) close theirs, so few are reset as they are reused; those that
        # are are asked again (`network`).
        self._http = http_client(
            base_url=self.base_url,
            headers=default_headers,
            timeout=timeouts.to_httpx(),
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, keepalive_expiry=KEEPALIVE_SECONDS
            ),
        )

    def __repr__(self) -> str:
        return f"ResponsesClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> ResponsesClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    @property
    def is_closed(self) -> bool:
        """Whether the connection pool has been closed."""
        return self._http.is_closed

    async def stream(
        self, request: ResponseRequest, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Event]:
        """Yield the typed events of a streamed response, ending after the terminal event.

        If you stop iterating early, close the iterator (`contextlib.aclosing`) so the
        connection is released at once rather than when the generator is collected.
        """
        body = replace(request, stream=True).to_body()
        parser = EventStreamParser(secret=self._api_key)
        terminal: Event | None = None
        async with contextlib.AsyncExitStack() as stack:
            source = await self._open_event_stream(stack, body, headers)
            messages = await stack.enter_async_context(contextlib.aclosing(source.aiter_sse()))
            try:
                async for message in messages:
                    event = self._parse(parser, message)
                    if event is None:
                        continue
                    if parser.finished:
                        terminal = event
                        break
                    yield event
                if terminal is not None:
                    await _drain(messages)
            except httpx.TimeoutException as exc:
                raise _logged(
                    GatewayTimeoutError("Timed out waiting for the next event from the gateway.")
                ) from exc
            except httpx.RequestError as exc:
                raise _logged(
                    StreamBrokenError(
                        f"The gateway connection broke mid-stream ({type(exc).__name__})."
                    )
                ) from exc
        self._parse_end(parser)
        if isinstance(terminal, ErrorEvent | ResponseFailed):
            _logged(terminal.as_error(secret=self._api_key))
        if terminal is not None:
            yield terminal

    async def list_models(self) -> list[str]:
        """Return the ids of the models the gateway lists (`GET /models`), in its order.

        Accepts the OpenAI list shape, `{"data": [...]}` without `object`, and a bare list;
        ids repeated or unusable are skipped. A gateway without a model list (404, or a
        reply that is not one) raises `NoModelListError`.
        """
        try:
            response = await self._request("GET", "/models")
        except NotFoundError as exc:
            raise NoModelListError(f"The gateway has no model list: {exc.detail}") from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        entries = data.get("data") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise _logged(NoModelListError("The gateway's /models reply is not a model list."))
        ids = (_model_id(entry) for entry in entries)
        return list(dict.fromkeys(model_id for model_id in ids if model_id))

    async def create(
        self, request: ResponseRequest, *, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Create a response without streaming and return it once it is finished."""
        body = replace(request, stream=False).to_body()
        response = _typed_response(await self._call("POST", "/responses", body, headers))
        if response.error is not None and response.status == "failed":
            _logged(ResponseFailed(response).as_error(secret=self._api_key))
        return response

    async def retrieve(self, response_id: str) -> Response:
        """Return a stored response."""
        return _typed_response(await self._call("GET", _response_path(response_id)))

    async def delete(self, response_id: str) -> None:
        """Delete a stored response, so it can no longer be continued or retrieved."""
        await self._call("DELETE", _response_path(response_id))

    async def cancel(self, response_id: str) -> Response:
        """Cancel a background response and return it (status `cancelled`)."""
        return _typed_response(await self._call("POST", f"{_response_path(response_id)}/cancel"))

    async def count_input_tokens(self, request: ResponseRequest) -> int:
        """Return how many input tokens the gateway would bill for `request`."""
        body = request.to_body()
        countable = (
            "model",
            "input",
            "instructions",
            "previous_response_id",
            "tools",
            "tool_choice",
            "reasoning",
        )
        payload = {key: body[key] for key in countable if key in body}
        data = await self._call("POST", "/responses/input_tokens", payload)
        count = data.get("input_tokens")
        if isinstance(count, bool) or not isinstance(count, int):
            raise UnavailableError("The gateway sent an input token count that is not a number.")
        return count

    async def _open_event_stream(
        self,
        stack: contextlib.AsyncExitStack,
        body: dict[str, Any],
        headers: Mapping[str, str] | None,
    ) -> EventSource:
        """Return an open event source for `body`, retrying failures before the first event.

        The open HTTP response is handed to `stack`, which closes it.
        """

        async def attempt() -> EventSource | _Failure:
            attempt_stack = contextlib.AsyncExitStack()
            try:
                source = await attempt_stack.enter_async_context(
                    aconnect_sse(
                        self._http, "POST", "/responses", json=body, headers=dict(headers or {})
                    )
                )
            except httpx.RequestError as exc:
                return _transport_failure(exc)
            response = source.response
            if response.is_success and _is_event_stream(response):
                stack.push_async_exit(attempt_stack)
                return source
            async with attempt_stack:
                return await self._failure_from(response)

        return await self._retrying(attempt)

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one JSON request (with retries) and return the JSON object it answered."""
        response = await self._request(method, path, body, headers)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _logged(UnavailableError("The gateway sent a reply that is not JSON."))
        # PostgreSQL refuses NUL in text and JSON; only replies containing one pay for this.
        return fields.scrub(data) if b"\\u0000" in response.content else data

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (with retries) and return its successful reply."""

        async def attempt() -> httpx.Response | _Failure:
            try:
                response = await self._http.request(method, path, json=body, headers=headers)
            except httpx.RequestError as exc:
                return _transport_failure(exc)
            if not response.is_success:
                return await self._failure_from(response)
            return response

        return await self._retrying(attempt)

    def _parse(self, parser: EventStreamParser, message: ServerSentEvent) -> Event | None:
        """Return the typed event of one message; a broken one is logged, then raised."""
        try:
            return parser.feed(message.event, message.data)
        except GatewayError as error:
            raise _logged(error) from None

    def _parse_end(self, parser: EventStreamParser) -> None:
        try:
            parser.finish()
        except GatewayError as error:
            raise _logged(error) from None

    async def _retrying(self, attempt: Callable[[], Awaitable[T | _Failure]]) -> T:
        """Run `attempt` until it succeeds, fails for good, or retries run out."""
        retry_number = 0
        while True:
            outcome = await attempt()
            if not isinstance(outcome, _Failure):
                return outcome
            error = outcome.error
            delay = None
            if outcome.retryable and retry_number < self._max_retries:
                retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
                delay = self._backoff.delay(retry_number, retry_after)
            if delay is None:
                raise _logged(error)
            logger.warning(
                "Gateway call failed with %s (status %s); retry %d of %d in %.2fs.",
                type(error).__name__,
                error.status_code,
                retry_number + 1,
                self._max_retries,
                delay,
            )
            await asyncio.sleep(delay)
            retry_number += 1

    async def _failure_from(self, response: httpx.Response) -> _Failure:
        """Return the failure for a reply that is an HTTP error or not an event stream."""
        if response.is_success:
            content_type = response.headers.get("content-type", "no content type")
            return _Failure(
                StreamBrokenError(f"Expected an event stream, got {content_type[:60]}."), False
            )
        try:
            body = await response.aread()
        except httpx.RequestError:
            body = b""
        error = error_from_http(response.status_code, body, response.headers, secret=self._api_key)
        # Only waiting can fix these: a quota, or new-api's 503 "no available channel for
        # model" (a ModelNotFoundError), would fail the same way again.
        retryable = (
            response.status_code in RETRYABLE_STATUSES
            and isinstance(error, RateLimitedError | UnavailableError)
            and response.headers.get("x-should-retry", "").lower() != "false"
        )
        return _Failure(error, retryable)


def _logged(error: GatewayError) -> GatewayError:
    """Log a failed gateway call once, with what the gateway said, and return the error."""
    logger.warning("Gateway call failed (%s): %s", type(error).__name__, error.detail_for_staff())
    return error


def _transport_failure(exc: httpx.RequestError) -> _Failure:
    """Return the failure for a request that got no HTTP reply at all."""
    error: GatewayError
    if isinstance(exc, httpx.ConnectTimeout):
        error, retryable = GatewayTimeoutError("Timed out connecting to the gateway."), True
    elif isinstance(exc, httpx.TimeoutException):
        # The gateway may already be working on it; asking again could double the cost.
        error, retryable = (
            GatewayTimeoutError("Timed out waiting for the gateway to answer."),
            False,
        )
    elif isinstance(exc, httpx.ConnectError):
        error, retryable = UnavailableError(f"Could not connect to the gateway: {exc}"), True
    elif isinstance(exc, httpx.RemoteProtocolError):
        # Typically a pooled keep-alive connection the server had already closed.
        error, retryable = (
            UnavailableError("The gateway closed the connection without answering."),
            True,
        )
    else:
        error, retryable = (
            UnavailableError(f"The gateway request failed ({type(exc).__name__})."),
            False,
        )
    error.__cause__ = exc
    return _Failure(error, retryable)


async def _drain(messages: AsyncIterator[ServerSentEvent]) -> None:
    """Read what is left of a finished stream, briefly, so the connection can be reused."""
    with contextlib.suppress(TimeoutError, httpx.RequestError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in messages:
                pass


def _model_id(entry: object) -> str:
    """Return the id of one entry of a model list (an object, or a bare id), or ""."""
    return fields.identifier({"id": entry.get("id") if isinstance(entry, dict) else entry}, "id")


def _is_event_stream(response: httpx.Response) -> bool:
    return "text/event-stream" in response.headers.get("content-type", "")


def _response_path(response_id: str) -> str:
    return f"/responses/{quote(response_id, safe='')}"


def _typed_response(data: dict[str, Any]) -> Response:
    try:
        return Response.from_dict(data)
    except MalformedField as exc:
        raise UnavailableError(f"The gateway sent a malformed response object: {exc}") from None
