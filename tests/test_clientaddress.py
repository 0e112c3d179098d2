"""Which X-Forwarded-For entry is the client: only what our own proxies appended."""

from __future__ import annotations

import pytest

from chatweb.clientaddress import TrustedProxyAddress, client_address


@pytest.mark.parametrize(
    ("forwarded", "proxies", "expected"),
    [
        (["203.0.113.9", "198.51.100.7"], 1, "198.51.100.7"),  # the client wrote the first
        (["203.0.113.9", "198.51.100.7", "10.0.0.2"], 2, "198.51.100.7"),  # CDN + nginx
        (["198.51.100.7"], 0, "10.0.0.1"),  # no proxy trusted: the peer
        ([], 1, "10.0.0.1"),  # straight to the app: nothing to believe
        (["198.51.100.7"], 2, "10.0.0.1"),  # fewer entries than proxies
        (["not-an-address"], 1, "10.0.0.1"),
        (["2001:DB8::1"], 1, "2001:db8::1"),
    ],
)
def test_client_address(forwarded, proxies, expected):
    assert client_address("10.0.0.1", forwarded, proxies) == expected


async def seen_client(scope_type: str, headers: list[tuple[bytes, bytes]], proxies: int):
    seen = {}

    async def app(scope, receive, send):
        seen["client"] = scope["client"]

    scope = {"type": scope_type, "client": ("10.0.0.1", 5555), "headers": headers}
    await TrustedProxyAddress(app, proxies)(scope, None, None)
    return seen["client"][0]


async def test_every_header_line_counts_in_order():
    headers = [(b"x-forwarded-for", b"203.0.113.9"), (b"X-Forwarded-For", b"198.51.100.7")]

    assert await seen_client("http", headers, 1) == "198.51.100.7"


async def test_websockets_get_the_same_address():
    headers = [(b"x-forwarded-for", b"203.0.113.9, 198.51.100.7")]

    assert await seen_client("websocket", headers, 1) == "198.51.100.7"
    assert await seen_client("websocket", headers, 0) == "10.0.0.1"
