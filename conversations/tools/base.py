"""The shapes every tool shares: the tool itself, what it may know, and how it fails.

Imports nothing from Django, so the registry and the pure tools load (and test) without
settings; only the search tool reaches the database, and it imports the ORM when called.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .schema import strict_problems

__all__ = ["Tool", "ToolContext", "ToolError"]

# The Responses API accepts function names of 1-64 letters, digits, underscores and dashes.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ToolError(Exception):
    """Raise inside a tool for a failure the model should read and may fix, e.g. a bad zone.

    Its message goes to the model verbatim; any other exception is logged and the model
    only learns that the tool failed, so internals never leak into the conversation.
    """


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool may know about the call: who asked, from where, and the clock.

    `now` is injectable so time-dependent tools are testable; it returns an aware datetime.
    """

    user: Any = None
    conversation_id: int | None = None
    now: Callable[[], datetime] = field(default=_utc_now)


@dataclass(frozen=True, slots=True)
class Tool:
    """A server-side function the model may call.

    `parameters` must be a strict-mode JSON schema (checked here, so a tool the gateway
    would reject never reaches the registry). `run` returns the text handed back to the
    model. `timeout` is in seconds; None runs the tool on the caller's thread, which
    database tools need because Django connections belong to the thread that opened them.
    `clamped` names top-level number properties whose out-of-range values are harmless
    (a result count): they are moved to the nearest bound instead of failing the call,
    which a model would only retry with the same mistake. A `private` tool reads what
    only the asking user may see, so a group's turns go without it.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[[dict[str, Any], ToolContext], str]
    timeout: float | None = 5.0
    clamped: frozenset[str] = frozenset()
    # Reads the asking user's own data (their other conversations): never offered in a
    # group conversation, whose every member reads the answer.
    private: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"tool name {self.name!r} is not a valid function name")
        problems = strict_problems(self.parameters)
        properties = self.parameters.get("properties", {})
        problems += [
            f"clamped property {name!r} has no minimum or maximum"
            for name in self.clamped
            if not {"minimum", "maximum"} & set(properties.get(name, {}))
        ]
        if problems:
            raise ValueError(f"tool {self.name}: " + "; ".join(problems))
