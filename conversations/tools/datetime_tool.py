"""Tell the model the current date and time in a time zone, which it cannot know itself."""

from __future__ import annotations

import functools
import json
import zoneinfo
from datetime import UTC, timedelta
from typing import Any

from .base import Tool, ToolContext, ToolError

__all__ = ["GET_CURRENT_TIME", "current_time"]


def current_time(arguments: dict[str, Any], context: ToolContext) -> str:
    """Return the time in `arguments["timezone"]` as JSON: ISO time, weekday, UTC offset."""
    zone = _zone(arguments["timezone"].strip())
    now = context.now()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    local = now.astimezone(zone).replace(microsecond=0)
    return json.dumps(
        {
            "timezone": zone.key,
            "iso": local.isoformat(),
            "weekday": local.strftime("%A"),
            "utc_offset": _offset(local.utcoffset() or timedelta()),
            "abbreviation": local.tzname(),
        }
    )


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    # Models often get the case wrong ("europe/berlin"); the right spelling is unambiguous.
    known = _known_zones()
    if name.lower() in known:
        return zoneinfo.ZoneInfo(known[name.lower()])
    if not known:
        raise ToolError("this server has no time zone database, so only UTC offsets are known")
    shown = name if len(name) <= 60 else name[:59] + "…"
    raise ToolError(
        f"unknown time zone {shown!r}: use an IANA name such as 'Europe/Berlin', "
        "'Asia/Shanghai', 'America/New_York' or 'UTC'"
    )


@functools.cache
def _known_zones() -> dict[str, str]:
    """Return every available zone by its lower-case name; read from disk once."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def _offset(offset: timedelta) -> str:
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


GET_CURRENT_TIME = Tool(
    name="get_current_time",
    description=(
        "Get the current date and time in a time zone. Use it whenever the answer depends "
        "on today's date or the time of day."
    ),
    parameters={
        "type": "object",
        "properties": {
            "timezone": {
                "type": "string",
                "description": "An IANA time zone name, e.g. Europe/Berlin, Asia/Shanghai or UTC.",
            }
        },
        "required": ["timezone"],
        "additionalProperties": False,
    },
    run=current_time,
    timeout=2.0,
)
