"""The registry and run_call: every failure becomes an error output, never an exception."""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.gateway.request import FunctionTool
from conversations.tools import (
    MAX_ARGUMENTS_BYTES,
    MAX_OUTPUT_BYTES,
    REGISTRY,
    Tool,
    ToolContext,
    ToolError,
    all_tools,
    get_tool,
    run_call,
    to_function_tool,
)

SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
    "additionalProperties": False,
}


def make_tool(run, timeout: float | None = 1.0) -> Tool:
    return Tool(name="echo", description="Test tool.", parameters=SCHEMA, run=run, timeout=timeout)


def call(tool: Tool, arguments: str = '{"text": "hi"}'):
    return run_call(tool.name, arguments, ToolContext(), tools={tool.name: tool})


def error_of(result) -> str:
    return json.loads(result.output)["error"]


def walk_objects(schema: dict):
    """Yield every object schema within `schema`, the root included."""
    if schema.get("type") == "object" or "object" in schema.get("type", []):
        yield schema
        for subschema in schema.get("properties", {}).values():
            yield from walk_objects(subschema)


def test_registry_holds_the_tools():
    assert {"get_current_time", "calculate", "search_conversations"} <= set(REGISTRY)


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        REGISTRY["echo"] = make_tool(lambda arguments, context: "")  # type: ignore[index]


def test_get_tool_and_all_tools():
    assert get_tool("calculate") is REGISTRY["calculate"] and get_tool("nope") is None
    assert all_tools() == list(REGISTRY.values())


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registered_schema_is_strict(name):
    tool = REGISTRY[name]
    assert tool.parameters["type"] == "object" and tool.description
    for schema in walk_objects(tool.parameters):
        assert schema["additionalProperties"] is False
        assert sorted(schema["required"]) == sorted(schema["properties"])
    # String lengths are outside OpenAI's strict subset and can be refused with a 400.
    assert "Length" not in json.dumps(tool.parameters)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registered_name_is_a_valid_function_name(name):
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", REGISTRY[name].name)


def test_to_function_tool_is_flat_and_strict():
    tool = to_function_tool(REGISTRY["calculate"])
    assert isinstance(tool, FunctionTool)
    assert tool.to_dict() == {
        "type": "function",
        "name": "calculate",
        "description": REGISTRY["calculate"].description,
        "parameters": REGISTRY["calculate"].parameters,
        "strict": True,
    }


def test_tool_refuses_a_non_strict_schema():
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}
    with pytest.raises(ValueError, match="required must list every property"):
        Tool(name="loose", description="", parameters=loose, run=lambda a, c: "")


def test_tool_refuses_a_bad_name():
    with pytest.raises(ValueError, match="not a valid function name"):
        Tool(name="two words", description="", parameters=SCHEMA, run=lambda a, c: "")


def test_run_call_happy_path():
    result = call(make_tool(lambda arguments, context: arguments["text"].upper()))
    assert result.ok and result.output == "HI" and result.error == ""
    assert result.arguments == {"text": "hi"} and result.duration_ms >= 0


def test_run_call_unknown_tool():
    result = run_call("launch_rockets", "{}", ToolContext())
    assert not result.ok and result.arguments is None
    assert error_of(result).startswith("unknown tool 'launch_rockets'; the tools are: ")


def test_run_call_only_runs_the_tools_offered():
    result = run_call("calculate", '{"expression": "1"}', ToolContext(), tools={})
    assert error_of(result) == "unknown tool 'calculate'; the tools are: none"


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ("{not json", "arguments are not valid JSON"),
        ('{"text": NaN}', "NaN is not a JSON number"),
        ("[1, 2]", "arguments must be a JSON object"),
        ("[" * 100_000, f"longer than {MAX_ARGUMENTS_BYTES} bytes"),
        ("[" * 50_000, "arguments are not valid JSON"),
    ],
)
def test_run_call_bad_json(arguments, error):
    result = call(make_tool(lambda arguments, context: "ran"), arguments)
    assert not result.ok and error in error_of(result) and result.arguments is None


def test_run_call_empty_arguments_reach_the_schema():
    result = call(make_tool(lambda arguments, context: "ran"), " ")
    assert error_of(result) == "invalid arguments: missing required property 'text'"


def test_run_call_schema_violation():
    result = call(make_tool(lambda arguments, context: "ran"), '{"text": 1, "more": true}')
    assert error_of(result) == (
        "invalid arguments: unexpected property 'more'; text must be string, not integer"
    )
    assert result.arguments == {"text": 1, "more": True}


def test_run_call_tool_error_reaches_the_model():
    def refuse(arguments, context):
        raise ToolError("no such city")

    result = call(make_tool(refuse))
    assert not result.ok and result.error == "no such city"
    assert json.loads(result.output) == {"error": "no such city"}


@pytest.mark.parametrize("timeout", [1.0, None])
def test_run_call_exception_in_tool_is_hidden_and_logged(caplog, timeout):
    def crash(arguments, context):
        raise RuntimeError("password=hunter2")

    with caplog.at_level(logging.ERROR, logger="conversations.tools.registry"):
        result = call(make_tool(crash, timeout))
    assert error_of(result) == "echo failed with an internal error"
    assert "hunter2" not in result.output and "hunter2" in caplog.text


def test_run_call_non_text_output_is_an_error():
    result = call(make_tool(lambda arguments, context: {"text": "hi"}))
    assert error_of(result) == "echo failed with an internal error"


def test_run_call_oversized_output_is_truncated_with_a_note():
    result = call(make_tool(lambda arguments, context: "x" * 100_000))
    assert result.ok and len(result.output.encode()) <= MAX_OUTPUT_BYTES
    head, note = result.output.split("\n")
    assert note == f"[output truncated: first {len(head)} of 100000 bytes shown]"


def test_run_call_truncation_keeps_characters_whole():
    result = call(make_tool(lambda arguments, context: "中文" * 10_000))
    head = result.output.split("\n[output truncated")[0]
    assert len(result.output.encode()) <= MAX_OUTPUT_BYTES and set(head) == {"中", "文"}


def test_run_call_output_at_the_cap_is_untouched():
    result = call(make_tool(lambda arguments, context: "x" * MAX_OUTPUT_BYTES))
    assert result.output == "x" * MAX_OUTPUT_BYTES


def test_run_call_gives_up_after_the_timeout():
    release = threading.Event()
    result = call(make_tool(lambda arguments, context: str(release.wait(5)), timeout=0.05))
    release.set()
    assert error_of(result) == "echo took longer than 0.05 s and was abandoned"
    assert 40 <= result.duration_ms < 1000


def test_run_call_survives_a_broken_registry():
    result = run_call("echo", "{}", ToolContext(), tools={"echo": object()})  # type: ignore[dict-item]
    assert not result.ok and error_of(result) == "the tool call failed with an internal error"


def test_run_call_empty_tool_error_still_fails():
    def refuse(arguments, context):
        raise ToolError

    assert error_of(call(make_tool(refuse))) == "echo failed"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=200, deadline=timedelta(seconds=2))
@given(st.sampled_from([*REGISTRY, "nope"]), st.text() | JSON.map(json.dumps))
def test_run_call_never_raises(name, arguments):
    result = run_call(name, arguments, ToolContext())
    assert isinstance(result.output, str) and result.ok == (not result.error)


@settings(max_examples=200, deadline=timedelta(seconds=2))
@given(st.dictionaries(st.sampled_from(["expression", "timezone", "x"]), JSON))
def test_run_call_never_raises_on_near_miss_arguments(arguments):
    for name in ("calculate", "get_current_time"):
        assert isinstance(run_call(name, json.dumps(arguments), ToolContext()).output, str)
