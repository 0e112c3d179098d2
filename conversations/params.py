"""Ids from query strings, forms and websocket frames, parsed in one place.

Every id a client sends reaches the database as a primary key, so anything that is not
a whole positive number in the key's range is refused here: a view answers 400 and the
socket an error frame, instead of the ORM raising (a 500 with a traceback) or Python's
`int()` quietly reading `1.5` as message 1.
"""

from __future__ import annotations

import re

from django.core.exceptions import BadRequest

__all__ = [
    "MAX_ID",
    "clean_text",
    "form_text",
    "is_share_token",
    "parse_id",
    "query_id",
    "query_text",
]

# The largest primary key a BigAutoField holds; a larger number names no row.
MAX_ID = 2**63 - 1
DIGITS = re.compile(r"[0-9]{1,19}")
# What `models.new_share_token` makes (token_urlsafe), at most the column's length.
SHARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def parse_id(value: object) -> int | None:
    """Return the positive id in `value` (a JSON number or a string of ASCII digits).

    None and "" mean "no id" and return None; anything else raises ValueError. Booleans
    and floats are refused even when whole: the page sends ids as strings.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("not an id")
    if isinstance(value, str):
        # str.isdigit() and int() accept other scripts' digits and "1_000"; ids are ASCII.
        if not DIGITS.fullmatch(value):
            raise ValueError("not an id")
        value = int(value)
    if not 0 < value <= MAX_ID:
        raise ValueError("not an id")
    return value


def query_id(request, name: str) -> int | None:
    """Return the id in the query parameter `name`, or None; a bad value is a 400."""
    try:
        return parse_id(request.GET.get(name, ""))
    except ValueError:
        raise BadRequest(f"{name} is not an id") from None


def clean_text(value: str) -> str:
    """Return `value` without NUL characters.

    PostgreSQL can neither store nor compare text holding NUL (psycopg raises DataError),
    and nobody types one: it arrives only in pasted binary or a hand-made request.
    """
    return value.replace("\x00", "")


def query_text(request, name: str) -> str:
    """Return the query parameter `name` as text the database can take ("" if absent)."""
    return clean_text(request.GET.get(name, ""))


def form_text(request, name: str) -> str:
    """Return the form field `name` as text the database can take ("" if absent)."""
    return clean_text(request.POST.get(name, ""))


def is_share_token(value: str) -> bool:
    """Return whether `value` could be a share link's token, before asking the database."""
    return bool(SHARE_TOKEN.fullmatch(value))
