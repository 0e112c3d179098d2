"""Validate tool arguments against the small part of JSON Schema our tools use.

`jsonschema` is not a dependency, and the tools need only a handful of keywords (type,
properties, required, enum, additionalProperties: false, minimum/maximum, maxLength), so
a validator of a few dozen lines beats a new package. A schema using anything else is
refused when its tool is defined (`strict_problems`), so no keyword is silently ignored.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["clamp", "strict_problems", "validate"]

SUPPORTED_KEYWORDS = frozenset(
    {
        "type",
        "description",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "minimum",
        "maximum",
        "maxLength",
    }
)
TYPES = frozenset({"object", "string", "number", "integer", "boolean", "null"})
# Accepted by `validate`, but OpenAI's strict mode does not list them and may answer 400,
# so tools offered to the model keep string lengths in code instead.
NOT_STRICT = frozenset({"maxLength"})


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Return what is wrong with `value` under `schema`, one sentence each; [] when valid."""
    where = path or "arguments"
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, kind) for kind in allowed):
            return [f"{where} must be {' or '.join(allowed)}, not {_type_name(value)}"]
    errors: list[str] = []
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        options = ", ".join(_short(option) for option in schema["enum"])
        errors.append(f"{where} must be one of {options}, not {_short(value)}")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where} must be at least {schema['minimum']}, not {_short(value)}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where} must be at most {schema['maximum']}, not {_short(value)}")
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{where} must be at most {schema['maxLength']} characters long")
    if isinstance(value, dict):
        errors.extend(_object_errors(value, schema, path))
    return errors


def clamp(arguments: Any, schema: dict[str, Any], names: frozenset[str]) -> Any:
    """Return `arguments` with the named numbers moved into their minimum..maximum range.

    Anything that is not a number (or not an object of arguments) is left for
    `validate` to report.
    """
    if not names or not isinstance(arguments, dict):
        return arguments
    properties = schema.get("properties", {})
    fixed = dict(arguments)
    for name in names & fixed.keys():
        value, bounds = fixed[name], properties.get(name, {})
        if not _is_type(value, "number"):
            continue
        if "minimum" in bounds and value < bounds["minimum"]:
            fixed[name] = bounds["minimum"]
        if "maximum" in bounds and value > bounds["maximum"]:
            fixed[name] = bounds["maximum"]
    return fixed


def strict_problems(schema: dict[str, Any], path: str = "") -> list[str]:
    """Return how `schema` breaks the Responses API strict-mode rules or our validator's reach.

    Strict mode wants an object at the root, every object closed with
    `additionalProperties: false`, and every property listed in `required` (optional
    values are spelled as a type list with "null").
    """
    where = path or "parameters"
    problems = [
        f"{where}: {key} is not supported" for key in schema if key not in SUPPORTED_KEYWORDS
    ]
    problems += [
        f"{where}: {key} is not allowed in strict mode" for key in schema if key in NOT_STRICT
    ]
    types = schema.get("type")
    kinds = [types] if isinstance(types, str) else list(types or [])
    if not kinds:
        problems.append(f"{where}: type is missing")
    problems += [f"{where}: type {kind!r} is not supported" for kind in kinds if kind not in TYPES]
    if not path and kinds != ["object"]:
        problems.append("parameters: the root must be an object")
    if "object" in kinds:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            problems.append(f"{where}: additionalProperties must be false")
        if sorted(schema.get("required", [])) != sorted(properties):
            problems.append(f"{where}: required must list every property")
        for name, subschema in properties.items():
            problems += strict_problems(subschema, f"{path}.{name}" if path else name)
    return problems


def _object_errors(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    properties = schema.get("properties", {})
    errors = [
        f"missing required property {_short(name)}{_within(path)}"
        for name in schema.get("required", [])
        if name not in value
    ]
    if schema.get("additionalProperties") is False:
        errors += [
            f"unexpected property {_short(name)}{_within(path)}"
            for name in value
            if name not in properties
        ]
    for name, item in value.items():
        if name in properties:
            errors += validate(item, properties[name], f"{path}.{name}" if path else name)
    return errors


def _is_type(value: Any, kind: str) -> bool:
    # bool is a subclass of int in Python, but JSON keeps true/false apart from numbers.
    if kind == "integer":
        return _is_type(value, "number") and (isinstance(value, int) or value.is_integer())
    if kind == "number":
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and (isinstance(value, int) or math.isfinite(value))
        )
    return {
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "null": value is None,
        "object": isinstance(value, dict),
    }.get(kind, False)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return "a non-finite number"
    if isinstance(value, int | float):
        return "integer" if _is_type(value, "integer") else "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array"


def _same(value: Any, option: Any) -> bool:
    return isinstance(value, bool) == isinstance(option, bool) and value == option


def _short(value: Any, limit: int = 60) -> str:
    """Return `value` quoted for a message, clipped so a huge argument cannot bloat it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _within(path: str) -> str:
    return f" in {path}" if path else ""
