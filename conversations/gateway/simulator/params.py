"""Validate a `POST /v1/responses` body the way a real gateway does, into `Params`.

Every rejection is the 400/404 body a real gateway sends (same message style, `param`
and `code`), so the app's error handling is exercised against realistic replies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .catalogue import ModelSpec, find_model
from .conversation import Turn, read_input
from .faults import model_not_found
from .http import ApiError

__all__ = ["COUNTING_FIELDS", "CREATE_FIELDS", "Params", "parse_params"]

CREATE_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "previous_response_id",
        "conversation",
        "store",
        "stream",
        "stream_options",
        "background",
        "include",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "parallel_tool_calls",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "temperature",
        "top_p",
        "top_logprobs",
        "text",
        "tool_choice",
        "tools",
        "truncation",
        "user",
        "context_management",
        "moderation",
        "prompt_cache_options",
    }
)
COUNTING_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "previous_response_id",
        "conversation",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "text",
        "truncation",
    }
)
WEB_SEARCH_TYPES = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
SUMMARY_SETTINGS = ("auto", "concise", "detailed")
MIN_OUTPUT_TOKENS = 16


@dataclass(frozen=True, slots=True)
class Params:
    """A validated request."""

    model: ModelSpec
    turns: list[Turn]
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    include_obfuscation: bool = True
    background: bool = False
    effort: str | None = None
    summary: str | None = None
    max_output_tokens: int | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    include: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    echo: dict[str, Any] = field(default_factory=dict)  # other settings, echoed back

    @property
    def function_tools(self) -> list[dict[str, Any]]:
        """Return the declared function tools, unless tool_choice is 'none'."""
        if self.tool_choice == "none":
            return []
        return [tool for tool in self.tools if tool["type"] == "function"]

    @property
    def web_search(self) -> bool:
        """Return whether the model may search the web for this request."""
        return self.tool_choice != "none" and any(t["type"] in WEB_SEARCH_TYPES for t in self.tools)


def parse_params(
    body: Any, model_name: str, *, allowed_fields: frozenset[str] = CREATE_FIELDS
) -> Params:
    """Return validated params; `model_name` is the model without any fault suffix."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    for key in body:
        if key not in allowed_fields:
            raise ApiError(400, f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")
    if not model_name:
        raise ApiError(
            400,
            "Missing required parameter: 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    model = find_model(model_name)
    if model is None:
        raise model_not_found(model_name)

    effort, summary = _reasoning(body.get("reasoning"), model)
    stream = _boolean(body, "stream", False)
    background = _boolean(body, "background", False)
    store = _boolean(body, "store", True)
    if background and stream:
        raise ApiError(
            400,
            "The simulator does not stream background responses; poll them instead.",
            param="background",
        )
    if background and not store:
        raise ApiError(400, "Background responses require 'store' to be true.", param="store")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise ApiError(
            400, "Invalid type for 'stream_options': expected an object.", param="stream_options"
        )
    return Params(
        model=model,
        turns=read_input(
            body.get("input"),
            images_allowed=model.images,
            files_allowed=model.files,
            model=model.name,
        ),
        instructions=_optional_text(body, "instructions"),
        previous_response_id=_optional_text(body, "previous_response_id"),
        store=store,
        stream=stream,
        include_obfuscation=bool(stream_options.get("include_obfuscation", True)),
        background=background,
        effort=effort,
        summary=summary,
        max_output_tokens=_max_output_tokens(body.get("max_output_tokens")),
        tools=_tools(body.get("tools"), model),
        tool_choice=_tool_choice(body.get("tool_choice")),
        include=_strings(body, "include"),
        metadata=_metadata(body.get("metadata")),
        echo={
            key: body[key]
            for key in ("temperature", "top_p", "parallel_tool_calls", "text", "truncation", "user")
            if key in body
        },
    )


def _reasoning(value: Any, model: ModelSpec) -> tuple[str | None, str | None]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid type for 'reasoning': expected an object.", param="reasoning")
    effort, summary = value.get("effort"), value.get("summary")
    if not model.reasoning:
        for key in ("effort", "summary"):
            if value.get(key) is not None:
                raise ApiError(
                    400,
                    f"Unsupported parameter: 'reasoning.{key}' is not supported with this model.",
                    param=f"reasoning.{key}",
                    code="unsupported_parameter",
                )
        return None, None
    if effort is not None and effort not in model.reasoning_efforts:
        supported = ", ".join(f"'{option}'" for option in model.reasoning_efforts)
        raise ApiError(
            400,
            f"Unsupported value: 'reasoning.effort' does not support '{effort}' with this "
            f"model. Supported values are: {supported}.",
            param="reasoning.effort",
            code="unsupported_value",
        )
    if summary == "generate_summary":
        summary = "auto"
    if summary is not None and summary not in SUMMARY_SETTINGS:
        raise ApiError(
            400,
            f"Invalid value: '{summary}'. Supported values are: 'auto', 'concise', and 'detailed'.",
            param="reasoning.summary",
            code="invalid_value",
        )
    return effort or model.default_effort, summary


def _max_output_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(
            400,
            "Invalid type for 'max_output_tokens': expected an integer.",
            param="max_output_tokens",
            code="invalid_type",
        )
    if value < MIN_OUTPUT_TOKENS:
        raise ApiError(
            400,
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {value} instead.",
            param="max_output_tokens",
            code="integer_below_min_value",
        )
    return value


def _tools(value: Any, model: ModelSpec) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "Invalid type for 'tools': expected an array.", param="tools")
    tools = []
    for index, tool in enumerate(value):
        path = f"tools[{index}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            tools.append(_function_tool(tool, path, model))
        elif kind in WEB_SEARCH_TYPES:
            if not model.web_search:
                raise _unsupported_tool(kind, model, path)
            tools.append({"search_context_size": "medium", "user_location": None, **tool})
        else:
            raise ApiError(
                400,
                f"Invalid value: '{kind}'. Supported values are: 'function', 'web_search' and "
                "'web_search_preview'.",
                param=f"{path}.type",
                code="invalid_value",
            )
    return tools


def _function_tool(tool: dict[str, Any], path: str, model: ModelSpec) -> dict[str, Any]:
    # The Chat Completions shape nests everything under "function"; Responses rejects it.
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise ApiError(
            400,
            f"Missing required parameter: '{path}.name'.",
            param=f"{path}.name",
            code="missing_required_parameter",
        )
    if not model.function_tools:
        raise _unsupported_tool("function", model, path)
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise ApiError(
            400,
            f"Invalid type for '{path}.parameters': expected an object.",
            param=f"{path}.parameters",
            code="invalid_type",
        )
    return {
        "type": "function",
        "name": tool["name"],
        "description": tool.get("description"),
        "parameters": parameters,
        "strict": tool.get("strict", True),
    }


def _unsupported_tool(kind: str, model: ModelSpec, path: str) -> ApiError:
    return ApiError(
        400,
        f"Tool '{kind}' is not supported with model '{model.name}'.",
        param=path,
        code="unsupported_value",
    )


def _tool_choice(value: Any) -> str | dict[str, Any]:
    if value is None:
        return "auto"
    if value in ("none", "auto", "required"):
        return value
    if isinstance(value, dict) and (
        (value.get("type") == "function" and isinstance(value.get("name"), str))
        or value.get("type") in WEB_SEARCH_TYPES
    ):
        return value
    raise ApiError(
        400, "Invalid value for 'tool_choice'.", param="tool_choice", code="invalid_value"
    )


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if (
        not isinstance(value, dict)
        or len(value) > 16
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise ApiError(
            400,
            "Invalid 'metadata': expected at most 16 string keys with string values.",
            param="metadata",
            code="invalid_value",
        )
    return value


def _boolean(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(
            400, f"Invalid type for '{key}': expected a boolean.", param=key, code="invalid_type"
        )
    return value


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(
            400, f"Invalid type for '{key}': expected a string.", param=key, code="invalid_type"
        )
    return value


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ApiError(
            400,
            f"Invalid type for '{key}': expected an array of strings.",
            param=key,
            code="invalid_type",
        )
    return value
