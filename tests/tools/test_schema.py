"""The small JSON Schema validator and the strict-mode check tools must pass."""

from __future__ import annotations

from conversations.tools.schema import clamp, strict_problems, validate

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 5},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "ratio": {"type": "number"},
        "flag": {"type": "boolean"},
        "unit": {"type": ["string", "null"], "enum": ["kg", "lb", None]},
        "inner": {
            "type": "object",
            "properties": {"x": {"type": "number"}},
            "required": ["x"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "count", "ratio", "flag", "unit", "inner"],
    "additionalProperties": False,
}
VALID = {"name": "abc", "count": 3, "ratio": 0.5, "flag": True, "unit": None, "inner": {"x": 1}}


def test_validate_valid_arguments():
    assert validate(VALID, SCHEMA) == []


def test_validate_missing_and_unexpected_properties():
    arguments = {key: value for key, value in VALID.items() if key != "count"} | {"extra": 1}
    assert validate(arguments, SCHEMA) == [
        "missing required property 'count'",
        "unexpected property 'extra'",
    ]


def test_validate_wrong_type():
    assert validate(VALID | {"name": 3}, SCHEMA) == ["name must be string, not integer"]


def test_validate_bool_is_not_a_number():
    assert validate(VALID | {"count": True, "ratio": False}, SCHEMA) == [
        "count must be integer, not boolean",
        "ratio must be number, not boolean",
    ]


def test_validate_integer_accepts_whole_float():
    assert validate(VALID | {"count": 3.0}, SCHEMA) == []
    assert validate(VALID | {"count": 3.5}, SCHEMA) == ["count must be integer, not number"]


def test_validate_non_finite_float_is_not_a_number():
    assert validate(VALID | {"ratio": float("nan")}, SCHEMA) == [
        "ratio must be number, not a non-finite number"
    ]


def test_validate_minimum_and_maximum():
    assert validate(VALID | {"count": 0}, SCHEMA) == ["count must be at least 1, not 0"]
    assert validate(VALID | {"count": 11}, SCHEMA) == ["count must be at most 10, not 11"]


def test_validate_max_length():
    assert validate(VALID | {"name": "abcdef"}, SCHEMA) == [
        "name must be at most 5 characters long"
    ]


def test_validate_enum_and_nullable_type():
    assert validate(VALID | {"unit": "kg"}, SCHEMA) == []
    assert validate(VALID | {"unit": "st"}, SCHEMA) == [
        "unit must be one of 'kg', 'lb', None, not 'st'"
    ]


def test_validate_nested_object_names_the_path():
    assert validate(VALID | {"inner": {"x": "1", "y": 2}}, SCHEMA) == [
        "unexpected property 'y' in inner",
        "inner.x must be number, not string",
    ]


def test_validate_arguments_must_be_an_object():
    assert validate([1], SCHEMA) == ["arguments must be object, not array"]


def test_validate_clips_huge_values_in_messages():
    (error,) = validate(VALID | {"unit": "x" * 10_000}, SCHEMA)
    assert len(error) < 200


def test_strict_problems_none_for_strict_schema():
    schema = {key: value for key, value in SCHEMA.items()}
    schema["properties"] = {k: v for k, v in SCHEMA["properties"].items() if k != "name"}
    schema["required"] = [name for name in SCHEMA["required"] if name != "name"]
    assert strict_problems(schema) == []


def test_strict_problems_optional_property_and_open_object():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}
    assert strict_problems(schema) == [
        "parameters: additionalProperties must be false",
        "parameters: required must list every property",
    ]


def test_strict_problems_unsupported_and_non_strict_keywords():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "pattern": "x", "maxLength": 3}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert strict_problems(schema) == [
        "a: pattern is not supported",
        "a: maxLength is not allowed in strict mode",
    ]


def test_strict_problems_root_must_be_object():
    assert "parameters: the root must be an object" in strict_problems({"type": "string"})


def test_clamp_moves_named_numbers_to_the_nearest_bound():
    names = frozenset({"count"})
    assert clamp(VALID | {"count": 0}, SCHEMA, names)["count"] == 1
    assert clamp(VALID | {"count": 99}, SCHEMA, names)["count"] == 10


def test_clamp_leaves_unnamed_and_non_numbers_to_validate():
    assert clamp(VALID | {"count": 0}, SCHEMA, frozenset())["count"] == 0
    assert clamp(VALID | {"count": "5"}, SCHEMA, frozenset({"count"}))["count"] == "5"
