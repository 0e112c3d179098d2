"""Read `input` (a string or a list of items) into plain turns, validating like a gateway.

Turns are what the simulator reasons about: who said what, which images and files came along,
which function calls were made and answered. Stored responses keep their turns so a
`previous_response_id` chain can be replayed without re-parsing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .files import FileInfo, file_refused, read_file_part
from .http import ApiError
from .images import ImageInfo, InvalidImage, read_data_url
from .tokens import IMAGE_TOKENS, count_tokens

__all__ = [
    "FunctionCall",
    "FunctionOutput",
    "Message",
    "ReasoningNote",
    "Turn",
    "check_function_outputs",
    "count_turn_tokens",
    "read_input",
    "turns_from_output",
]

EXAMPLE_DATA_URL = "data:image/png;base64,aW1nIGJ5dGVzIGhlcmU="


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    text: str
    images: tuple[ImageInfo | str, ...] = ()  # ImageInfo for data URLs, the URL otherwise
    files: tuple[FileInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class FunctionCall:
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class FunctionOutput:
    call_id: str
    output: str


@dataclass(frozen=True, slots=True)
class ReasoningNote:
    """A replayed reasoning item; it adds nothing the simulator needs to read."""

    summary: tuple[str, ...] = field(default=())


Turn = Message | FunctionCall | FunctionOutput | ReasoningNote


def read_input(
    value: Any, *, images_allowed: bool, model: str, files_allowed: bool = False
) -> list[Turn]:
    """Return the turns of a request's `input`; raise a 400 `ApiError` like a gateway."""
    if value is None:
        return []
    if isinstance(value, str):
        return [Message("user", value)]
    if not isinstance(value, list):
        raise ApiError(
            400, "Invalid type for 'input': expected a string or an array.", param="input"
        )
    turns = []
    for index, item in enumerate(value):
        turn = _read_item(item, f"input[{index}]", (images_allowed, files_allowed), model)
        if turn is not None:
            turns.append(turn)
    return turns


def turns_from_output(output: list[dict[str, Any]]) -> list[Turn]:
    """Return the turns a response's own output adds to the conversation."""
    turns: list[Turn] = []
    for item in output:
        if item["type"] == "message":
            text = "".join(part.get("text", part.get("refusal", "")) for part in item["content"])
            turns.append(Message("assistant", text))
        elif item["type"] == "function_call":
            turns.append(FunctionCall(item["call_id"], item["name"], item["arguments"]))
    return turns


def check_function_outputs(turns: list[Turn]) -> None:
    """Raise the gateway's 400 if a function output answers a call that was never made."""
    calls = set()
    for turn in turns:
        if isinstance(turn, FunctionCall):
            calls.add(turn.call_id)
        elif isinstance(turn, FunctionOutput) and turn.call_id not in calls:
            raise ApiError(
                400,
                f"No tool call found for function call output with call_id {turn.call_id}.",
                param="input",
            )


def count_turn_tokens(turns: list[Turn]) -> int:
    """Return the input tokens of `turns` (see tokens.py for the rule)."""
    total = 0
    for turn in turns:
        if isinstance(turn, Message):
            total += count_tokens(turn.text) + IMAGE_TOKENS * len(turn.images)
            total += sum(file.tokens for file in turn.files)
        elif isinstance(turn, FunctionCall):
            total += count_tokens(turn.name) + count_tokens(turn.arguments)
        elif isinstance(turn, FunctionOutput):
            total += count_tokens(turn.output)
    return total


def _read_item(item: Any, path: str, allowed: tuple[bool, bool], model: str) -> Turn | None:
    if not isinstance(item, dict):
        raise ApiError(400, f"Invalid type for '{path}': expected an object.", param=path)
    kind = item.get("type", "message")
    if kind == "message":
        return _read_message(item, path, allowed, model)
    if kind == "function_call":
        return FunctionCall(
            _required_text(item, "call_id", path),
            _required_text(item, "name", path),
            _required_text(item, "arguments", path),
        )
    if kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            output = " ".join(part.get("text", "") for part in output if isinstance(part, dict))
        if not isinstance(output, str):
            raise ApiError(
                400, f"Missing required parameter: '{path}.output'.", param=f"{path}.output"
            )
        return FunctionOutput(_required_text(item, "call_id", path), output)
    if kind == "reasoning":
        summary = item.get("summary") or []
        return ReasoningNote(
            tuple(part.get("text", "") for part in summary if isinstance(part, dict))
        )
    if kind in ("web_search_call", "item_reference"):
        return None
    raise ApiError(
        400,
        f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', "
        "'function_call_output', 'reasoning', 'web_search_call' and 'item_reference'.",
        param=f"{path}.type",
        code="invalid_value",
    )


def _read_message(
    item: dict[str, Any], path: str, allowed: tuple[bool, bool], model: str
) -> Message:
    """Return one message; `allowed` says whether the model takes (images, files)."""
    images_allowed, files_allowed = allowed
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise ApiError(
            400,
            f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', "
            "and 'developer'.",
            param=f"{path}.role",
            code="invalid_value",
        )
    content = item.get("content")
    if isinstance(content, str):
        return Message(role, content)
    if not isinstance(content, list):
        raise ApiError(
            400, f"Missing required parameter: '{path}.content'.", param=f"{path}.content"
        )
    texts: list[str] = []
    images: list[ImageInfo | str] = []
    files: list[FileInfo] = []
    for index, part in enumerate(content):
        part_path = f"{path}.content[{index}]"
        if not isinstance(part, dict):
            raise ApiError(
                400, f"Invalid type for '{part_path}': expected an object.", param=part_path
            )
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            texts.append(_required_text(part, "text", part_path))
        elif kind == "refusal":
            texts.append(_required_text(part, "refusal", part_path))
        elif kind == "input_image":
            if not images_allowed:
                raise ApiError(
                    400,
                    f"Image inputs are not supported by model '{model}'.",
                    param=part_path,
                    code="unsupported_value",
                )
            images.append(image_from_url(part.get("image_url"), f"{part_path}.image_url"))
        elif kind == "input_file":
            if not files_allowed:
                raise file_refused(model, part_path)
            files.append(read_file_part(part, part_path))
        else:
            raise ApiError(
                400,
                f"Invalid value: '{kind}'. Supported values are: 'input_text', 'input_image', "
                "'input_file', 'output_text' and 'refusal'.",
                param=f"{part_path}.type",
                code="invalid_value",
            )
    return Message(role, "\n".join(texts), tuple(images), tuple(files))


def image_from_url(url: Any, param: str) -> ImageInfo | str:
    """Return an image input's web URL, or the image of its data URL; 400 on anything else.

    Shared by the Responses (`image_url`) and Chat Completions (`image_url.url`) inputs.
    """
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return url
    try:
        if not isinstance(url, str):
            raise InvalidImage("but got an invalid value.")
        return read_data_url(url)
    except InvalidImage as problem:
        raise ApiError(
            400,
            f"Invalid '{param}'. Expected a base64-encoded data URL with an image MIME type "
            f"(e.g. '{EXAMPLE_DATA_URL}'), {problem}",
            param=param,
            code="invalid_value",
        ) from None


def _required_text(item: dict[str, Any], key: str, path: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise ApiError(
            400,
            f"Missing required parameter: '{path}.{key}'.",
            param=f"{path}.{key}",
            code="missing_required_parameter",
        )
    return value
