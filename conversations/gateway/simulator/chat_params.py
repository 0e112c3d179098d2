"""Validate a `POST /v1/chat/completions` body the way OpenAI does, into `ChatParams`.

Relays such as LiteLLM turn a Responses API call into this older shape, so the simulator
serves it as a backend would: the messages become the same turns the Responses endpoint
reads, and the answer comes from the same plan, so one question gets the same answer and
the same tool calls whichever protocol carried it. Rejections use OpenAI's messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalogue import ModelSpec, find_model
from .conversation import FunctionCall, FunctionOutput, Message, Turn, image_from_url
from .faults import model_not_found
from .files import FileInfo, read_file_part
from .http import ApiError
from .images import ImageInfo
from .params import Params

__all__ = ["CHAT_FIELDS", "ChatParams", "parse_chat_params"]

CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "n",
        "stop",
        "user",
        "metadata",
        "store",
        "reasoning_effort",
        "response_format",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "web_search_options",
        "service_tier",
        "prediction",
        "modalities",
        "audio",
        "safety_identifier",
        "prompt_cache_key",
        "verbosity",
    }
)


@dataclass(frozen=True, slots=True)
class ChatParams:
    """A validated chat completions request: the shared `Params` plus what only chat has."""

    params: Params
    include_usage: bool = False


def parse_chat_params(body: Any, model_name: str) -> ChatParams:
    """Return validated params; `model_name` is the model without any fault suffix."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    for key in body:
        if key not in CHAT_FIELDS:
            raise ApiError(400, f"Unrecognized request argument supplied: {key}")
    if not model_name:
        raise ApiError(400, "you must provide a model parameter", param=None)
    model = find_model(model_name)
    if model is None:
        raise model_not_found(model_name)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    instructions: list[str] = []
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        _read_message(message, f"messages[{index}]", model, instructions, turns)
    _check_tool_messages(turns)
    effort = body.get("reasoning_effort")
    if effort is not None and not model.reasoning:
        raise ApiError(
            400,
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            param="reasoning_effort",
            code="unsupported_parameter",
        )
    if effort is not None and effort not in model.reasoning_efforts:
        raise ApiError(
            400,
            f"Invalid value: '{effort}'. Supported values are: "
            + ", ".join(f"'{option}'" for option in model.reasoning_efforts)
            + ".",
            param="reasoning_effort",
            code="invalid_value",
        )
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise ApiError(
            400, "Invalid type for 'stream_options': expected an object.", param="stream_options"
        )
    if stream_options and not body.get("stream"):
        raise ApiError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    params = Params(
        model=model,
        turns=turns,
        instructions="\n\n".join(instructions) or None,
        store=False,
        stream=bool(body.get("stream")),
        include_obfuscation=False,
        effort=(effort or model.default_effort) if model.reasoning else None,
        # Chat backends that reason (DeepSeek, vLLM) stream their thinking as
        # `reasoning_content`; a summary gives the simulator some to stream.
        summary="auto" if model.reasoning else None,
        max_output_tokens=_max_tokens(body),
        tools=_tools(body.get("tools"), model.function_tools, model_name),
        tool_choice=_tool_choice(body.get("tool_choice")),
    )
    return ChatParams(params, include_usage=bool(stream_options.get("include_usage")))


def _read_message(
    message: Any, path: str, model: ModelSpec, instructions: list[str], turns: list[Turn]
) -> None:
    if not isinstance(message, dict):
        raise ApiError(400, f"Invalid type for '{path}': expected an object.", param=path)
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        instructions.append(_text_of(content, path, ("text",)))
    elif role == "user":
        text, images, files = _user_content(content, path, model)
        turns.append(Message("user", text, images, files))
    elif role == "assistant":
        text = _text_of(content, path, ("text", "refusal"), optional=True)
        if text:
            turns.append(Message("assistant", text))
        for call_index, call in enumerate(message.get("tool_calls") or []):
            turns.append(_tool_call(call, f"{path}.tool_calls[{call_index}]"))
    elif role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            raise ApiError(
                400,
                f"Missing required parameter: '{path}.tool_call_id'.",
                param=f"{path}.tool_call_id",
                code="missing_required_parameter",
            )
        turns.append(FunctionOutput(call_id, _text_of(content, path, ("text",))))
    else:
        raise ApiError(
            400,
            f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
            "'tool', 'function' and 'developer'.",
            param=f"{path}.role",
            code="invalid_value",
        )


def _text_of(content: Any, path: str, kinds: tuple[str, ...], *, optional: bool = False) -> str:
    if content is None and optional:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ApiError(
            400,
            f"Invalid type for '{path}.content': expected one of a string or array of objects.",
            param=f"{path}.content",
            code="invalid_type",
        )
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise _invalid_part(kind, f"{path}.content[{index}]", kinds)
        texts.append(str(part.get(kind) or ""))
    return "\n".join(texts)


def _user_content(
    content: Any, path: str, model: ModelSpec
) -> tuple[str, tuple[ImageInfo | str, ...], tuple[FileInfo, ...]]:
    if isinstance(content, str):
        return content, (), ()
    if not isinstance(content, list):
        raise ApiError(
            400,
            f"Invalid type for '{path}.content': expected one of a string or array of objects.",
            param=f"{path}.content",
            code="invalid_type",
        )
    texts: list[str] = []
    images: list[ImageInfo | str] = []
    files: list[FileInfo] = []
    for index, part in enumerate(content):
        part_path = f"{path}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text") or ""))
        elif kind == "file":
            # OpenAI's chat form of a file: {"type": "file", "file": {"filename", "file_data"}}.
            if not model.files:
                raise ApiError(
                    400,
                    "Invalid content type. file is only supported by certain models.",
                    param=part_path,
                    code="invalid_value",
                )
            file = part.get("file") if isinstance(part.get("file"), dict) else {}
            files.append(read_file_part(file, f"{part_path}.file"))
        elif kind == "image_url":
            if not model.images:
                raise ApiError(
                    400,
                    "Invalid content type. image_url is only supported by certain models.",
                    param=part_path,
                    code="invalid_value",
                )
            image_url = part.get("image_url")
            url = image_url.get("url") if isinstance(image_url, dict) else None
            images.append(image_from_url(url, f"{part_path}.image_url.url"))
        else:
            raise _invalid_part(kind, part_path, ("text", "image_url", "file"))
    return "\n".join(texts), tuple(images), tuple(files)


def _tool_call(call: Any, path: str) -> FunctionCall:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(call.get("id"), str):
        raise ApiError(
            400,
            f"Missing required parameter: '{path}.function'.",
            param=f"{path}.function",
            code="missing_required_parameter",
        )
    name, arguments = function.get("name"), function.get("arguments")
    if not isinstance(name, str) or not isinstance(arguments, str):
        raise ApiError(
            400,
            f"Missing required parameter: '{path}.function.arguments'.",
            param=f"{path}.function.arguments",
            code="missing_required_parameter",
        )
    return FunctionCall(call["id"], name, arguments)


def _check_tool_messages(turns: list[Turn]) -> None:
    """Raise OpenAI's 400 for a tool message that answers no earlier tool call."""
    calls = set()
    for turn in turns:
        if isinstance(turn, FunctionCall):
            calls.add(turn.call_id)
        elif isinstance(turn, FunctionOutput) and turn.call_id not in calls:
            raise ApiError(
                400,
                # OpenAI's spelling, kept so tests can match the real message.
                "Invalid parameter: messages with role 'tool' must be a response to a "
                "preceeding message with 'tool_calls'.",
                param="messages",
            )


def _tools(value: Any, allowed: bool, model_name: str) -> list[dict[str, Any]]:
    """Return the function tools in the Responses shape the planner reads."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "Invalid type for 'tools': expected an array.", param="tools")
    tools = []
    for index, tool in enumerate(value):
        path = f"tools[{index}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        # The flat Responses shape (`name` at the top) is the usual mistake; OpenAI says this.
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ApiError(
                400,
                f"Missing required parameter: '{path}.function'.",
                param=f"{path}.function",
                code="missing_required_parameter",
            )
        if not allowed:
            raise ApiError(
                400,
                f"Tools are not supported with model '{model_name}'.",
                param="tools",
                code="unsupported_value",
            )
        tools.append(
            {
                "type": "function",
                "name": function["name"],
                "description": function.get("description"),
                "parameters": function.get("parameters"),
                "strict": function.get("strict", False),
            }
        )
    return tools


def _tool_choice(value: Any) -> str | dict[str, Any]:
    if value is None:
        return "auto"
    if value in ("none", "auto", "required"):
        return value
    function = value.get("function") if isinstance(value, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "function", "name": function["name"]}
    raise ApiError(
        400, "Invalid value for 'tool_choice'.", param="tool_choice", code="invalid_value"
    )


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ApiError(
                400,
                f"Invalid '{key}': expected a positive integer.",
                param=key,
                code="invalid_value",
            )
        return value
    return None


def _invalid_part(kind: Any, path: str, kinds: tuple[str, ...]) -> ApiError:
    supported = ", ".join(f"'{option}'" for option in kinds)
    return ApiError(
        400,
        f"Invalid value: '{kind}'. Supported values are: {supported}.",
        param=f"{path}.type",
        code="invalid_value",
    )
