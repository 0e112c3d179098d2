"""The tools the model may call, and `run_call`, which runs one call and never raises.

Whatever the model sends — an unknown name, broken JSON, arguments that break the
schema — and whatever the tool does — raise, hang, answer with megabytes — the caller
gets a `ToolResult` whose output can go straight back to the model as the
`function_call_output`, so a bad call costs one round trip, not the turn.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from conversations.gateway.request import FunctionTool

from .base import Tool, ToolContext, ToolError
from .calculator import CALCULATE
from .datetime_tool import GET_CURRENT_TIME
from .schema import clamp, validate
from .search import SEARCH_CONVERSATIONS

__all__ = [
    "MAX_ARGUMENTS_BYTES",
    "MAX_OUTPUT_BYTES",
    "REGISTRY",
    "ToolResult",
    "all_tools",
    "get_tool",
    "run_call",
    "to_function_tool",
]

logger = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 16 * 1024
MAX_ARGUMENTS_BYTES = 64 * 1024
_TRUNCATION_NOTE = "\n[output truncated: first {kept} of {total} bytes shown]"

REGISTRY: Mapping[str, Tool] = MappingProxyType(
    {tool.name: tool for tool in (GET_CURRENT_TIME, CALCULATE, SEARCH_CONVERSATIONS)}
)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """One call's outcome: `output` goes to the model, the rest to logs and the transcript.

    `arguments` is the parsed JSON object, or None when the text was not one.
    """

    output: str
    ok: bool
    error: str = ""
    duration_ms: float = 0.0
    arguments: dict[str, Any] | None = None


class _TimedOut(Exception):
    pass


def get_tool(name: str) -> Tool | None:
    """Return the registered tool called `name`, or None."""
    return REGISTRY.get(name)


def all_tools() -> list[Tool]:
    """Return every registered tool, in registration order."""
    return list(REGISTRY.values())


def to_function_tool(tool: Tool) -> FunctionTool:
    """Return `tool` as the flat, strict function tool a Responses request carries."""
    return FunctionTool(
        name=tool.name, description=tool.description, parameters=tool.parameters, strict=True
    )


def run_call(
    name: str,
    arguments_json: str,
    context: ToolContext,
    *,
    tools: Mapping[str, Tool] = REGISTRY,
) -> ToolResult:
    """Run the model's call of `name` with `arguments_json`; never raise.

    Pass `tools` to allow only the tools the request offered: a model that calls one it
    was not given gets an error, not a run.
    """
    started = time.perf_counter()
    try:
        arguments, output, error = _attempt(name, arguments_json, context, tools)
    except Exception:
        # A bug in the checks themselves must not end the turn either.
        logger.exception("Running tool call %r failed", name)
        arguments, output, error = None, "", "the tool call failed with an internal error"
    if error:
        output = json.dumps({"error": error}, ensure_ascii=False)
    duration_ms = (time.perf_counter() - started) * 1000
    return ToolResult(_capped(output), not error, error, duration_ms, arguments)


def _attempt(
    name: str, arguments_json: str, context: ToolContext, tools: Mapping[str, Tool]
) -> tuple[dict[str, Any] | None, str, str]:
    """Return the parsed arguments, the tool's output, and an error ("" on success)."""
    tool = tools.get(name)
    if tool is None:
        known = ", ".join(tools) or "none"
        return None, "", f"unknown tool {_clip(str(name))!r}; the tools are: {known}"
    try:
        arguments = _parse(arguments_json)
    except ToolError as error:
        return None, "", str(error)
    arguments = clamp(arguments, tool.parameters, tool.clamped)
    problems = validate(arguments, tool.parameters)
    if problems:
        return arguments, "", "invalid arguments: " + "; ".join(problems)
    try:
        output = _run(tool, arguments, context)
    except ToolError as error:
        return arguments, "", str(error) or f"{name} failed"
    except _TimedOut:
        logger.warning("Tool %s took longer than %s s", name, tool.timeout)
        return arguments, "", f"{name} took longer than {tool.timeout:g} s and was abandoned"
    except Exception:
        logger.exception("Tool %s failed", name)
        return arguments, "", f"{name} failed with an internal error"
    if not isinstance(output, str):
        logger.error("Tool %s returned %s, not text", name, type(output).__name__)
        return arguments, "", f"{name} failed with an internal error"
    return arguments, output, ""


def _parse(arguments_json: str) -> dict[str, Any]:
    if not isinstance(arguments_json, str):
        raise ToolError("arguments must be JSON text")
    if len(arguments_json.encode("utf-8", "surrogatepass")) > MAX_ARGUMENTS_BYTES:
        raise ToolError(f"arguments are longer than {MAX_ARGUMENTS_BYTES} bytes")
    if not arguments_json.strip():
        # Some models send "" for a call without arguments; let the schema say what's missing.
        return {}
    try:
        arguments = json.loads(arguments_json, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise ToolError(f"arguments are not valid JSON: {_clip(str(error))}") from None
    if not isinstance(arguments, dict):
        raise ToolError("arguments must be a JSON object")
    return arguments


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which are not JSON and break every tool.
    raise ValueError(f"{name} is not a JSON number")


def _run(tool: Tool, arguments: dict[str, Any], context: ToolContext) -> Any:
    """Return what the tool returns, giving up after its timeout.

    Python cannot stop a thread, so a tool that runs over keeps running in a daemon
    thread (which does not hold up shutdown) while the model hears it timed out; the
    pure tools are bounded by their own guards, and this is the backstop.
    """
    if tool.timeout is None:
        return tool.run(arguments, context)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["output"] = tool.run(arguments, context)
        except Exception as error:
            outcome["error"] = error

    worker = threading.Thread(
        target=contextvars.copy_context().run, args=(target,), name=f"tool-{tool.name}", daemon=True
    )
    worker.start()
    worker.join(tool.timeout)
    if worker.is_alive():
        raise _TimedOut
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("output")


def _capped(output: str) -> str:
    """Return `output` cut to MAX_OUTPUT_BYTES of UTF-8, with a note saying so."""
    encoded = output.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_OUTPUT_BYTES:
        return output
    total = len(encoded)
    room = MAX_OUTPUT_BYTES - len(_TRUNCATION_NOTE.format(kept=total, total=total))
    # Cut on a character boundary: "ignore" drops the partial character at the end.
    head = encoded[:room].decode("utf-8", "ignore")
    return head + _TRUNCATION_NOTE.format(kept=len(head.encode("utf-8")), total=total)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
