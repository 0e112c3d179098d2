"""Build request bodies for `POST /responses` and the input items that go in them.

`ResponseRequest.to_body()` produces exactly the JSON the Responses API documents, with
tools in the flat Responses format (the Chat Completions nested format is rejected by
real gateways). The helper functions build input items for a user turn (text, documents, images),
and for replaying earlier turns when the gateway cannot remember them (`store=False`
or a lost `previous_response_id`). A document goes either as a file (`input_file`, for
models that read files) or as its text, framed so the model sees where the file
begins and ends and what was left out (`document_text_part`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .response import FunctionCallItem, MessageItem, OutputItem, ReasoningItem

__all__ = [
    "FunctionTool",
    "LeftOut",
    "Reasoning",
    "ResponseRequest",
    "Tool",
    "WebSearchTool",
    "assistant_message",
    "document_text_part",
    "file_part",
    "function_call_item",
    "function_call_output",
    "image_part",
    "reasoning_item",
    "replay_output",
    "user_message",
]


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A function the model may ask the app to call; `parameters` is a JSON schema."""

    name: str
    parameters: Mapping[str, Any]
    description: str | None = None
    strict: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the flat Responses tool format."""
        tool: dict[str, Any] = {"type": "function", "name": self.name}
        if self.description is not None:
            tool["description"] = self.description
        tool["parameters"] = dict(self.parameters)
        tool["strict"] = self.strict
        return tool


@dataclass(frozen=True, slots=True)
class WebSearchTool:
    """The built-in web search tool; `preview` selects the older `web_search_preview`."""

    preview: bool = False
    search_context_size: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the tool entry for the request."""
        tool: dict[str, Any] = {"type": "web_search_preview" if self.preview else "web_search"}
        if self.search_context_size is not None:
            tool["search_context_size"] = self.search_context_size
        return tool


Tool = FunctionTool | WebSearchTool


@dataclass(frozen=True, slots=True)
class Reasoning:
    """Reasoning settings: effort (low/medium/high...) and summary (auto/concise/detailed)."""

    effort: str | None = None
    summary: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the `reasoning` object with only the settings that were chosen."""
        settings: dict[str, Any] = {}
        if self.effort is not None:
            settings["effort"] = self.effort
        if self.summary is not None:
            settings["summary"] = self.summary
        return settings


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    """Everything one call to `POST /responses` can ask for; unset fields are omitted."""

    model: str
    input: str | Sequence[Mapping[str, Any]] = ""
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: int | None = None
    tools: Sequence[Tool] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    include: Sequence[str] = ()
    metadata: Mapping[str, str] | None = None
    background: bool | None = None
    stream: bool = False
    # Sent only with a streamed request, and only to gateways known to accept it:
    # relays reject or drop what OpenAI documents, e.g. {"include_obfuscation": False}.
    stream_options: Mapping[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        """Return the JSON body."""
        body: dict[str, Any] = {"model": self.model}
        body["input"] = self.input if isinstance(self.input, str) else [dict(i) for i in self.input]
        optional = {
            "instructions": self.instructions,
            "previous_response_id": self.previous_response_id,
            "store": self.store,
            "reasoning": self.reasoning.to_dict() if self.reasoning is not None else None,
            "max_output_tokens": self.max_output_tokens,
            "tools": [tool.to_dict() for tool in self.tools] or None,
            "tool_choice": _plain(self.tool_choice),
            "include": list(self.include) or None,
            "metadata": dict(self.metadata) if self.metadata is not None else None,
            "background": self.background,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        body["stream"] = self.stream
        if self.stream and self.stream_options:
            body["stream_options"] = dict(self.stream_options)
        return body


def image_part(mime_type: str, data: bytes, *, detail: str = "auto") -> dict[str, Any]:
    """Return an `input_image` part carrying the image inline as a data URL."""
    encoded = base64.b64encode(data).decode("ascii")
    return {
        "type": "input_image",
        "image_url": f"data:{mime_type};base64,{encoded}",
        "detail": detail,
    }


def file_part(filename: str, mime_type: str, data: bytes) -> dict[str, Any]:
    """Return an `input_file` part carrying the file inline as a data URL."""
    encoded = base64.b64encode(data).decode("ascii")
    return {
        "type": "input_file",
        "filename": filename,
        "file_data": f"data:{mime_type};base64,{encoded}",
    }


@dataclass(frozen=True, slots=True)
class LeftOut:
    """What a document sent as text lost to fit the model: `count` of `total` `unit`s
    ("lines" or "characters"), from the end."""

    count: int
    total: int
    unit: str


_BACKTICKS = re.compile("`+")
NO_TEXT = "No text could be extracted from this file (it may be a scanned document)."


def document_text_part(
    filename: str,
    text: str,
    *,
    pages: int | None = None,
    left_out: LeftOut | None = None,
    no_text: bool = False,
    partial: bool = False,
) -> dict[str, Any]:
    """Return an `input_text` part with a document's text, framed by its name.

    The text sits in a fence longer than any run of backticks inside it, so nothing in
    the file can end it early. After the fence comes the end of the file, or what was
    cut off to fit the model (`left_out`), or that `text` is only the start of the file
    (`partial`: the extraction kept no more).
    """
    name = " ".join(filename.split()) or "unnamed"
    about = f" ({pages} {'page' if pages == 1 else 'pages'})" if pages else ""
    heading = f"File: {name}{about}"
    if no_text:
        return {"type": "input_text", "text": f"{heading}\n{NO_TEXT}"}
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    if left_out is not None and left_out.count:
        ending = (
            f"[Left out: the last {left_out.count:,} of {left_out.total:,} {left_out.unit} "
            f"of {name} to fit the model's context.]"
        )
    elif partial:
        ending = f"[Left out: the rest of {name}, past the text extracted from it.]"
    else:
        ending = f"End of file: {name}"
    body = text.rstrip("\n")
    return {"type": "input_text", "text": f"{heading}\n{fence}\n{body}\n{fence}\n{ending}"}


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def user_message(
    text: str,
    images: Iterable[tuple[str, bytes]] = (),
    documents: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Return a user message item: the text, then the documents (`file_part` or
    `document_text_part` parts), then any images as (mime type, bytes)."""
    content: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
    content.extend(dict(part) for part in documents)
    content.extend(image_part(mime_type, data) for mime_type, data in images)
    return {"type": "message", "role": "user", "content": content}


def assistant_message(text: str) -> dict[str, Any]:
    """Return an earlier assistant answer, for replaying history.

    As the Responses API's own output item: `output_text` content, not a bare string,
    which some gateways take for user-side input or reject.
    """
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def function_call_item(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """Return an earlier function call of the model, for replaying history."""
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def function_call_output(call_id: str, output: str) -> dict[str, Any]:
    """Return the app's answer to the model's function call `call_id`."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def reasoning_item(
    item_id: str, encrypted_content: str, summary: Sequence[str] = ()
) -> dict[str, Any]:
    """Return an earlier reasoning item, so a stateless turn keeps the model's reasoning."""
    return {
        "type": "reasoning",
        "id": item_id,
        "summary": [{"type": "summary_text", "text": text} for text in summary],
        "encrypted_content": encrypted_content,
    }


def replay_output(items: Iterable[OutputItem]) -> list[dict[str, Any]]:
    """Return input items that replay a response's output in a later stateless request.

    Messages, function calls and reasoning (when it has encrypted content) are replayed;
    web search calls and unknown items are left out because the answer already holds
    what they found.
    """
    replayed: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, MessageItem) and item.text:
            replayed.append(assistant_message(item.text))
        elif isinstance(item, FunctionCallItem):
            replayed.append(function_call_item(item.call_id, item.name, item.arguments))
        elif isinstance(item, ReasoningItem) and item.encrypted_content:
            replayed.append(reasoning_item(item.id, item.encrypted_content, item.summary))
    return replayed


def _plain(value: str | Mapping[str, Any] | None) -> str | dict[str, Any] | None:
    if value is None or isinstance(value, str):
        return value
    return dict(value)
