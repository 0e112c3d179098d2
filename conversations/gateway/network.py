"""The HTTP stack under the client: httpx's API over aiohttp's connections.

httpx over its own transport (httpcore on anyio) cost about 120 µs of CPU per streamed
event; over httpx-aiohttp, whose HTTP parser and stream reader are aiohttp's C code,
about half that (`python -m bench.transports`). httpx stays the client's API: requests,
responses, timeouts, pool limits and proxies are set and read the httpx way.

What this module adds to httpx-aiohttp 0.2:
- Each aiohttp failure becomes the httpx error httpcore raises for the same failure,
  before the reply and during its body. httpx-aiohttp 0.2 turns every aiohttp connection
  error, a refused connection included, into `httpx.ConnectTimeout`, and lets an
  unreadable reply through as an aiohttp exception; the client's retries and its
  mapping to `GatewayError`s rely on the httpx classes.
- Proxies from the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) are aiohttp's to
  read (`trust_env`): httpx reads none for a transport it is given.
- aiohttp keeps no cookie jar: httpx keeps the client's cookies, as before.
- Timeouts mean what they mean to httpx: connect and pool each get their own time.
  (httpx's write timeout has no aiohttp equivalent; request bodies here are small.)

aiohttp's session belongs to the event loop it was opened in, like httpcore's pool: use
one client per loop, and close it in that loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport as BaseAiohttpTransport

__all__ = ["AiohttpTransport", "http_client", "httpx_error"]

# httpx's own defaults, for the signatures below; the client always passes its limits.
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

# First match wins, so each subclass comes before its base.
_ERRORS: tuple[tuple[type[aiohttp.ClientError], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    # Refused, unknown host, TLS failures: nothing was sent.
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    # Closed before or during the reply, a body cut short, a reply that is not HTTP.
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    # A connection reset, or another socket error on an open connection.
    (aiohttp.ClientConnectionError, httpx.ReadError),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.TransportError),
)


def httpx_error(exc: Exception, request: httpx.Request | None = None) -> Exception:
    """Return the httpx error for an aiohttp one, raised as is or as httpx-aiohttp mapped it.

    Its cause is aiohttp's error; any other exception comes back unchanged.
    """
    cause = exc if isinstance(exc, aiohttp.ClientError) else exc.__cause__
    if not isinstance(cause, aiohttp.ClientError):
        return exc
    for aiohttp_class, httpx_class in _ERRORS:
        if isinstance(cause, aiohttp_class):
            if type(exc) is httpx_class:
                return exc
            error = httpx_class(str(cause) or type(cause).__name__, request=request)
            error.__cause__ = cause
            return error
    return exc


class AiohttpTransport(BaseAiohttpTransport):
    """httpx-aiohttp's transport with httpcore's errors and no aiohttp cookie jar."""

    def get_client(self) -> aiohttp.ClientSession:
        """Return a new aiohttp session for the pool limits (called in the running loop)."""
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=True
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        if timeout.get("pool") is not None and timeout.get("connect") is not None:
            # httpx-aiohttp hands the pool timeout to aiohttp's `connect`, one budget for
            # waiting for a free connection and opening a new one; httpx gives each its
            # own, so a connect timeout above the pool timeout would be cut short.
            budget = timeout["pool"] + timeout["connect"]
            request.extensions["timeout"] = {**timeout, "pool": budget}
        try:
            response = await super().handle_async_request(request)
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            error = _before_the_reply(httpx_error(exc, request), request)
            raise error from error.__cause__
        response.stream = _MappedStream(response.stream)
        return response


def _before_the_reply(error: Exception, request: httpx.Request) -> Exception:
    """Report a connection reset before any byte of the reply as a hang-up.

    It is what a pooled connection does when the gateway's keep-alive ran out just as
    it was reused: the gateway answered nothing, so the client may ask again, as it
    does when the connection closes without a reply (httpcore sees that case as a
    `RemoteProtocolError`; it checks a pooled socket before reusing it, aiohttp does
    not). A reset mid-reply stays a `ReadError`: the gateway was already answering.
    """
    if isinstance(error, httpx.ReadError) and isinstance(error.__cause__, aiohttp.ClientOSError):
        hang_up = httpx.RemoteProtocolError(
            f"The connection was reset before the reply ({error})", request=request
        )
        hang_up.__cause__ = error.__cause__
        return hang_up
    return error


class _MappedStream(httpx.AsyncByteStream):
    """A response body whose aiohttp failures arrive as httpcore's errors."""

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            error = httpx_error(exc)
            raise error from error.__cause__

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            error = httpx_error(exc)
            raise error from error.__cause__


def http_client(
    *, transport: httpx.AsyncBaseTransport | None = None, **options: Any
) -> httpx.AsyncClient:
    """Return an httpx client whose connections go through aiohttp.

    `options` are `httpx.AsyncClient`'s (base URL, headers, timeout, limits). A
    transport passed in (the in-process simulator's, a test's mock) is used as it is.
    httpx reads no proxy from the environment for a transport it is given, so the
    aiohttp session does (`trust_env`): HTTP_PROXY, HTTPS_PROXY and NO_PROXY.
    """
    if transport is None:
        transport = AiohttpTransport(limits=options.get("limits", _DEFAULT_LIMITS))
    return httpx.AsyncClient(transport=transport, **options)
