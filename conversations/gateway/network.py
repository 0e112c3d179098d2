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
- Proxies from the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) go
  through the same transport: httpx makes one transport per proxy, through
  `HTTPClient`.
- aiohttp keeps no cookie jar: httpx keeps the client's cookies, as before.
- Timeouts mean what they mean to httpx: connect and pool each get their own time.
  (httpx's write timeout has no aiohttp equivalent; request bodies here are small.)

aiohttp's session belongs to the event loop it was opened in, like httpcore's pool: use
one client per loop, and close it in that loop.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport as BaseAiohttpTransport

__all__ = ["AiohttpTransport", "HTTPClient", "httpx_error"]

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
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

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
            error = httpx_error(exc, request)
            raise error from error.__cause__
        response.stream = _MappedStream(response.stream)
        return response


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


class HTTPClient(httpx.AsyncClient):
    """An httpx client whose connections, proxied ones included, go through aiohttp.

    A transport passed in (the in-process simulator's, a test's mock) is used as it is.
    """

    def _init_transport(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return transport
        return AiohttpTransport(verify=verify, cert=cert, trust_env=trust_env, limits=limits)

    def _init_proxy_transport(
        self,
        proxy: httpx.Proxy,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
    ) -> httpx.AsyncBaseTransport:
        return AiohttpTransport(
            verify=verify, cert=cert, trust_env=trust_env, limits=limits, proxy=proxy
        )
