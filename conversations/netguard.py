"""The rule for any URL the server might fetch on someone's behalf: public hosts only.

chatweb fetches no user-supplied URL today (images are uploaded bytes, web search runs
at the gateway). Any future feature that does must pass the URL through
`check_public_url` first, so a user cannot make the server reach its own network:
loopback, private ranges, link-local (cloud metadata at 169.254.169.254), and the
IPv6 spellings of all of those, including IPv4-mapped addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["UnsafeURL", "check_public_url"]


class UnsafeURL(ValueError):
    """The URL may not be fetched: not http(s), or a host on a non-public network."""


def check_public_url(url: str) -> list[str]:
    """Return the public addresses `url`'s host resolves to, or raise UnsafeURL.

    Every address the name resolves to must be public: a name with one public and one
    private address is refused, since the fetch could land on either. Fetch by one of
    the returned addresses (not the name again), or a second lookup could differ.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("only http and https URLs with a host can be fetched")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as error:
        raise UnsafeURL(f"the host cannot be resolved ({error.__class__.__name__})") from None
    addresses = sorted({info[4][0] for info in found})
    for address in addresses:
        if not is_public(address):
            raise UnsafeURL("the host is on a private, loopback or reserved network")
    return addresses


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not embedded.is_global:
            return False
    return ip.is_global and not ip.is_multicast
