"""Tolerant readers for fields of gateway JSON.

Gateways omit optional fields (sequence numbers, item status, `output`) and send `null`
for others, so a missing or null field reads as its default. A field that is present with
the wrong type is real garbage: it raises `MalformedField`, which the stream parser turns
into `StreamBrokenError`.

Every text loses its NUL characters: PostgreSQL refuses them in text and JSON columns, and
a gateway relaying a model's bytes can send one. Ids are checked for what the app needs of
them (a non-empty printable string), never for a length or a prefix: LiteLLM's response ids
are 429 characters long. A bad id reads as absent, with one warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MalformedField",
    "code",
    "identifier",
    "integer",
    "list_of_mappings",
    "mapping",
    "number",
    "optional_int",
    "optional_mapping",
    "optional_text",
    "scrub",
    "text",
]

logger = logging.getLogger(__name__)

# Bad ids already logged, so a delta stream repeating one bad item id logs it once.
_logged_bad_ids: set[tuple[str, str]] = set()
_BAD_IDS_REMEMBERED = 200
_ID_KEYS = frozenset({"id", "item_id", "call_id", "previous_response_id"})


class MalformedField(ValueError):
    """A field is present but has a type the protocol does not allow."""


def text(data: Mapping[str, Any], key: str, default: str = "") -> str:
    """Return a string field, or `default` when it is missing or null."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise MalformedField(f"{key!r} should be a string, got {type(value).__name__}")
    return value.replace("\x00", "") if "\x00" in value else value


def optional_text(data: Mapping[str, Any], key: str) -> str | None:
    """Return a string field, or None when it is missing or null."""
    value = data.get(key)
    return None if value is None else text(data, key)


def integer(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    """Return an integer field, or `default` when it is missing or null."""
    value = optional_int(data, key)
    return default if value is None else value


def optional_int(data: Mapping[str, Any], key: str) -> int | None:
    """Return an integer field, or None when it is missing or null."""
    value = data.get(key)
    if value is None:
        return None
    # bool is a subclass of int, but `true` is never a valid index or count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedField(f"{key!r} should be an integer, got {type(value).__name__}")
    return value


def number(data: Mapping[str, Any], key: str) -> float | None:
    """Return a numeric field (int or float on the wire), or None when missing."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedField(f"{key!r} should be a number, got {type(value).__name__}")
    return float(value)


def mapping(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Return an object field, or an empty dict when it is missing or null."""
    value = optional_mapping(data, key)
    return {} if value is None else value


def optional_mapping(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """Return an object field, or None when it is missing or null."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedField(f"{key!r} should be an object, got {type(value).__name__}")
    return value


def list_of_mappings(data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """Return a list-of-objects field, or an empty list when it is missing or null."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise MalformedField(f"{key!r} should be a list of objects")
    return value


def identifier(data: Mapping[str, Any], key: str) -> str:
    """Return an id field, or "" when it is missing or unusable (logged once as a warning).

    Usable means a non-empty string of printable characters, of any length: the id goes
    back to the gateway as sent, so it must not be altered, only refused.
    """
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, str) and value.strip() and value.isprintable():
        return value
    _log_bad_id(key, value)
    return ""


def code(data: Mapping[str, Any], key: str = "code") -> str | None:
    """Return an error code as text: some gateways send numbers (429), kept as "429"."""
    value = data.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    return optional_text(data, key) or None


def scrub(value: Any, secret: str | None = None) -> Any:
    """Return a decoded JSON value without NUL characters (or `secret`) in any string.

    Ids keep their NUL, so `identifier` refuses them: an id with a character removed is
    another id, which the gateway would not know.
    """
    if isinstance(value, str):
        value = value.replace("\x00", "")
        return value.replace(secret, "[redacted]") if secret else value
    if isinstance(value, list):
        return [scrub(entry, secret) for entry in value]
    if isinstance(value, dict):
        return {
            scrub(name, secret): entry
            if name in _ID_KEYS and isinstance(entry, str) and "\x00" in entry
            else scrub(entry, secret)
            for name, entry in value.items()
        }
    return value


def _log_bad_id(key: str, value: object) -> None:
    shown = repr(value)[:80]
    if (key, shown) in _logged_bad_ids:
        return
    if len(_logged_bad_ids) >= _BAD_IDS_REMEMBERED:
        _logged_bad_ids.clear()
    _logged_bad_ids.add((key, shown))
    logger.warning("Ignoring an unusable %r from the gateway: %s", key, shown)
