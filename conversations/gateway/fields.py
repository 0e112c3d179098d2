"""Tolerant readers for fields of gateway JSON.

Gateways omit optional fields (sequence numbers, item status, `output`) and send `null`
for others, so a missing or null field reads as its default. A field that is present with
the wrong type is real garbage: it raises `MalformedField`, which the stream parser turns
into `StreamBrokenError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MalformedField",
    "integer",
    "list_of_mappings",
    "mapping",
    "number",
    "optional_int",
    "optional_mapping",
    "optional_text",
    "text",
]


class MalformedField(ValueError):
    """A field is present but has a type the protocol does not allow."""


def text(data: Mapping[str, Any], key: str, default: str = "") -> str:
    """Return a string field, or `default` when it is missing or null."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise MalformedField(f"{key!r} should be a string, got {type(value).__name__}")
    return value


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
