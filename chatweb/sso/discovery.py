"""A provider's endpoints, read from its `.well-known/openid-configuration`.

Fetched on first use and kept for an hour per process: providers rotate keys, not
endpoints, and a sign-in should not cost an extra round trip. The document's `issuer`
must be the one configured, as OpenID Connect Discovery requires; otherwise a typo'd
or hijacked URL could name another provider's endpoints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from chatweb.sso.config import Provider
from chatweb.sso.errors import SignInFailed

__all__ = ["Endpoints", "endpoints", "forget"]

KEEP_SECONDS = 3600
MAX_DOCUMENT_BYTES = 256 * 1024


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    authorization: str
    token: str
    jwks: str
    userinfo: str = ""
    end_session: str = ""


_known: dict[str, tuple[float, Endpoints]] = {}


def forget() -> None:
    """Drop every remembered document (tests, or after a provider moved)."""
    _known.clear()


def is_web_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def fetch_json(url: str, timeout: int, what: str) -> dict:
    """GET a JSON object, turning every way it can fail into a SignInFailed."""
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as error:
        raise SignInFailed("unreachable", f"{what} {url}: {type(error).__name__}") from None
    if response.status_code != 200:
        raise SignInFailed("unreachable", f"{what} {url} answered HTTP {response.status_code}")
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise SignInFailed("bad_answer", f"{what} {url} is {len(response.content)} bytes")
    try:
        document = response.json()
    except ValueError:
        raise SignInFailed("bad_answer", f"{what} {url} is not JSON") from None
    if not isinstance(document, dict):
        raise SignInFailed("bad_answer", f"{what} {url} is not a JSON object")
    return document


def endpoints(provider: Provider, *, timeout: int) -> Endpoints:
    """Return the provider's endpoints, from memory when fetched within the hour."""
    known = _known.get(provider.name)
    if known and known[0] > time.monotonic():
        return known[1]
    document = fetch_json(provider.discovery_url, timeout, "discovery document")
    if document.get("issuer", "").rstrip("/") != provider.issuer.rstrip("/"):
        raise SignInFailed(
            "bad_answer",
            f"discovery names issuer {document.get('issuer')!r}, not {provider.issuer!r}",
        )
    fields = {
        "authorization": "authorization_endpoint",
        "token": "token_endpoint",
        "jwks": "jwks_uri",
    }
    for key in fields.values():
        if not is_web_url(document.get(key)):
            raise SignInFailed("bad_answer", f"discovery document has no usable {key!r}")
    found = Endpoints(
        issuer=document["issuer"],
        **{field: document[key] for field, key in fields.items()},
        userinfo=document["userinfo_endpoint"]
        if is_web_url(document.get("userinfo_endpoint"))
        else "",
        end_session=(
            document["end_session_endpoint"]
            if is_web_url(document.get("end_session_endpoint"))
            else ""
        ),
    )
    _known[provider.name] = (time.monotonic() + KEEP_SECONDS, found)
    return found
