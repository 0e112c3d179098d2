"""Decide when the simulated model calls one of the request's function tools, and with what.

A tool is called when the question asks for something it evidently does: the time or
date (a tool whose name or description mentions time/date/clock), arithmetic such as
"what is 12*7" (a calculator-like tool), or any tool whose name words appear in the
question ("weather" → `get_weather`, "my conversations" → `search_conversations`). A
verb such as "search" alone picks no tool, and a question that asks for the web goes
to the web search when the request offers it, as a real model would. Arguments are
filled in for every property of the tool's JSON schema, guessed from the property
names and kept within its minimum and maximum, so strict schemas are satisfied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .answers import snippet

__all__ = ["ToolCall", "choose_function_call"]

# Operators include the multiplication and division signs (U+00D7, U+00F7).
_ARITHMETIC = re.compile(
    r"(-?\d+(?:\.\d+)?)\s*([-+*/\u00d7\u00f7]|x(?=\s*-?\d))\s*(-?\d+(?:\.\d+)?)"
)
_TIME_QUESTION = re.compile(r"\b(?:time|date|day|clock|today|now)\b|几点|时间|日期|今天", re.I)
_TIME_TOOL = re.compile(r"time|date|clock|now", re.I)
_CALCULATOR_TOOL = re.compile(r"calc|math|arithmetic|evaluat|comput|multipl|sum|add", re.I)
_PLACE = re.compile(r"\b(?:in|at|for)\s+([A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)?)")
# Verbs and filler in tool names: "Search the web" must not call `search_conversations`.
_GENERIC_NAME_WORDS = frozenset(
    {"get", "set", "current", "lookup", "fetch", "tool", "function", "search", "find", "list"}
)
_WEB_REQUEST = re.compile(r"\b(?:web|internet|online|google)\b|网上|上网|联网|搜索网络", re.I)
_OPERATOR_NAMES = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_SYMBOLS = {"\u00d7": "*", "x": "*", "\u00f7": "/"}
_TIME_ZONES = {
    "Tokyo": "Asia/Tokyo",
    "London": "Europe/London",
    "Paris": "Europe/Paris",
    "Berlin": "Europe/Berlin",
    "New York": "America/New_York",
    "Beijing": "Asia/Shanghai",
    "Shanghai": "Asia/Shanghai",
    "Sydney": "Australia/Sydney",
}


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The function call the model will make."""

    name: str
    arguments: str  # JSON text


@dataclass(frozen=True, slots=True)
class _Arithmetic:
    left: float
    operator: str  # one of + - * /
    right: float

    @property
    def expression(self) -> str:
        return f"{self.left:g}{self.operator}{self.right:g}"


def choose_function_call(
    tools: list[dict[str, Any]],
    tool_choice: str | dict[str, Any],
    text: str,
    *,
    web_search: bool = False,
) -> ToolCall | None:
    """Return the call to make for `text`, or None to answer directly (or search the web).

    With `web_search` offered, a question that asks for the web is left to it unless
    the request forces a function.
    """
    if not tools:
        return None
    arithmetic = _arithmetic_in(text)
    forced = _forced_tool(tools, tool_choice)
    if forced is None and web_search and _WEB_REQUEST.search(text):
        return None
    tool = forced or _matching_tool(tools, text, arithmetic)
    if tool is None and tool_choice == "required":
        tool = tools[0]
    if tool is None:
        return None
    arguments = _arguments(tool.get("parameters") or {}, text, arithmetic)
    return ToolCall(tool["name"], json.dumps(arguments, ensure_ascii=False))


def _forced_tool(
    tools: list[dict[str, Any]], tool_choice: str | dict[str, Any]
) -> dict[str, Any] | None:
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        return next((tool for tool in tools if tool["name"] == tool_choice["name"]), None)
    return None


def _matching_tool(
    tools: list[dict[str, Any]], text: str, arithmetic: _Arithmetic | None
) -> dict[str, Any] | None:
    if arithmetic is not None:
        found = _first(tools, _CALCULATOR_TOOL)
        if found is not None:
            return found
    if _TIME_QUESTION.search(text):
        found = _first(tools, _TIME_TOOL)
        if found is not None:
            return found
    lowered = text.lower()
    for tool in tools:
        words = re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", tool["name"]).lower())
        # "conversations" in a name matches "my conversation about…" too.
        words = [w.removesuffix("s") for w in words if w not in _GENERIC_NAME_WORDS]
        if any(len(w) >= 4 and w in lowered for w in words):
            return tool
    return None


def _first(tools: list[dict[str, Any]], pattern: re.Pattern[str]) -> dict[str, Any] | None:
    for tool in tools:
        described = f"{tool['name']} {tool.get('description') or ''}".replace("_", " ")
        if pattern.search(described):
            return tool
    return None


def _arithmetic_in(text: str) -> _Arithmetic | None:
    match = _ARITHMETIC.search(text)
    if match is None:
        return None
    operator = _SYMBOLS.get(match[2], match[2])
    return _Arithmetic(float(match[1]), operator, float(match[3]))


def _arguments(schema: dict[str, Any], text: str, arithmetic: _Arithmetic | None) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    numbers = iter(
        [arithmetic.left, arithmetic.right]
        if arithmetic
        else [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)]
    )
    return {
        name: _guess(name, spec if isinstance(spec, dict) else {}, text, arithmetic, numbers)
        for name, spec in properties.items()
    }


def _guess(
    name: str, spec: dict[str, Any], text: str, arithmetic: _Arithmetic | None, numbers: Any
) -> Any:
    """Return a plausible value for one schema property, judging by its name and type."""
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    lowered = name.lower()
    operator_word = _OPERATOR_NAMES.get(arithmetic.operator) if arithmetic else None
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        wanted = [operator_word, arithmetic.operator if arithmetic else None]
        return next(
            (option for option in enum if option in wanted),
            next((option for option in enum if str(option).lower() in text.lower()), enum[0]),
        )
    if kind in ("number", "integer"):
        value = next(numbers, None)
        if value is None:  # the question names no number: the least the schema allows
            value = spec.get("minimum", 0)
        value = min(max(value, spec.get("minimum", value)), spec.get("maximum", value))
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    place = _place_in(text)
    if re.search(r"op|operator|operation", lowered) and operator_word:
        return operator_word
    if re.search(r"expr|formula|calculation|equation|input|query", lowered):
        return arithmetic.expression if arithmetic else snippet(text, 200)
    if re.search(r"timezone|tz|zone", lowered):
        return _TIME_ZONES.get(place or "", "UTC")
    if re.search(r"city|location|place|where", lowered):
        return place or "current location"
    if "format" in lowered:
        return "ISO 8601"
    if "unit" in lowered:
        return "celsius"
    return snippet(text, 200)


def _place_in(text: str) -> str | None:
    match = _PLACE.search(text)
    return match[1] if match else None
