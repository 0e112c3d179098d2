"""The client's address: the socket's peer, or what our own proxies say it was.

`X-Forwarded-For` is a list each proxy appends to, and the client writes its first
entries itself. Daphne's `--proxy-headers` trusts the first entry, so behind nginx's
`$proxy_add_x_forwarded_for` anyone could pick the address the login throttle and the
audit log see. Here only the entries our proxies appended are believed: with
TRUSTED_PROXY_COUNT proxies in front, the client is the entry that many places from the
end. With 0 (the default) the header is ignored and the socket's peer is the client.

`TrustedProxyAddress` writes that address into the ASGI scope's `client` before Django
or Channels see it, so `REMOTE_ADDR`, the throttle, the audit log and the websocket
scope all agree.
"""

from __future__ import annotations

import ipaddress

from chatweb.env import EnvError

__all__ = ["TrustedProxyAddress", "client_address", "refuse_proxy_headers_flag"]


def forwarded_for(headers) -> list[str]:
    """Return every `X-Forwarded-For` entry of ASGI headers, first to last."""
    entries: list[str] = []
    for name, value in headers:
        if name.lower() == b"x-forwarded-for":
            entries.extend(part.strip() for part in value.decode("latin-1").split(","))
    return entries


def client_address(peer: str | None, forwarded: list[str], trusted_proxies: int) -> str | None:
    """Return the address `trusted_proxies` proxies vouch for, else the socket's peer.

    A request with fewer entries than proxies did not come through all of them (or
    came straight to the app), so nothing in its header can be believed.
    """
    if trusted_proxies <= 0 or len(forwarded) < trusted_proxies:
        return peer
    candidate = forwarded[-trusted_proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


class TrustedProxyAddress:
    """ASGI middleware: put the trusted client address in `scope["client"]`."""

    def __init__(self, application, trusted_proxies: int) -> None:
        self.application = application
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.trusted_proxies:
            peer = (scope.get("client") or (None, 0))[0]
            address = client_address(
                peer, forwarded_for(scope.get("headers", ())), self.trusted_proxies
            )
            if address != peer:
                scope = {**scope, "client": (address, 0)}
        return await self.application(scope, receive, send)


def refuse_proxy_headers_flag(argv: list[str], trusted_proxies: int) -> None:
    """Stop when Daphne trusts the first forwarded address and we were told to trust none.

    With TRUSTED_PROXY_COUNT set the app reads the header itself and Daphne's choice is
    overridden; with 0, Daphne's `--proxy-headers` would let every client name its own
    address, and the original socket peer is lost before the app could correct it.
    """
    if trusted_proxies == 0 and "daphne" in argv[0] and "--proxy-headers" in argv:
        raise EnvError(
            "TRUSTED_PROXY_COUNT",
            "is 0 but Daphne runs with --proxy-headers, which believes the client's own "
            "X-Forwarded-For: drop --proxy-headers and set TRUSTED_PROXY_COUNT to the number "
            "of proxies in front of the app",
        )
