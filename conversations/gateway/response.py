"""The typed final `Response` and its output items.

These are what the app stores after a turn: the answer text with its citations, the
reasoning summary, tool calls and token usage. Only fields the app uses are typed; the
whole gateway object stays available as `Response.raw`. Item and part types the app does
not know are kept (as `UnknownItem` / `UnknownPart`) rather than dropped or fatal.

Ids read through `fields.identifier`: an unusable one becomes "" (the app then replays the
history instead of continuing from it). The exception is a completed response's function
call without a `call_id`: its result could never be sent back, so it is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import fields
from .errors import UnanswerableToolCallError

__all__ = [
    "Annotation",
    "ContentPart",
    "ErrorDetail",
    "FunctionCallItem",
    "MessageItem",
    "OtherAnnotation",
    "OutputItem",
    "OutputText",
    "ReasoningItem",
    "ReasoningText",
    "Refusal",
    "Response",
    "UnknownItem",
    "UnknownPart",
    "UrlCitation",
    "Usage",
    "WebSearchCallItem",
    "parse_item",
    "parse_part",
]


@dataclass(frozen=True, slots=True)
class UrlCitation:
    """A web source cited by the answer; indices are character offsets into the text."""

    url: str
    title: str
    start_index: int
    end_index: int


@dataclass(frozen=True, slots=True)
class OtherAnnotation:
    """An annotation type the app does not use (file citations and the like)."""

    type: str
    raw: dict[str, Any]


Annotation = UrlCitation | OtherAnnotation


@dataclass(frozen=True, slots=True)
class OutputText:
    """A text part of an assistant message."""

    text: str
    annotations: tuple[Annotation, ...] = ()


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal part: the model declined to answer."""

    refusal: str


@dataclass(frozen=True, slots=True)
class ReasoningText:
    """Raw reasoning text, exposed only by some (open-weight style) models."""

    text: str


@dataclass(frozen=True, slots=True)
class UnknownPart:
    """A content part type the app does not know."""

    type: str
    raw: dict[str, Any]


ContentPart = OutputText | Refusal | ReasoningText | UnknownPart


@dataclass(frozen=True, slots=True)
class MessageItem:
    """An assistant message made of text and refusal parts."""

    id: str
    role: str
    status: str | None
    content: tuple[ContentPart, ...]

    @property
    def text(self) -> str:
        """Return the text of all output_text parts joined together."""
        return "".join(part.text for part in self.content if isinstance(part, OutputText))

    @property
    def refusal(self) -> str:
        """Return the text of all refusal parts joined together."""
        return "".join(part.refusal for part in self.content if isinstance(part, Refusal))

    @property
    def citations(self) -> tuple[UrlCitation, ...]:
        """Return the url citations of every text part, in order."""
        return tuple(
            annotation
            for part in self.content
            if isinstance(part, OutputText)
            for annotation in part.annotations
            if isinstance(annotation, UrlCitation)
        )


@dataclass(frozen=True, slots=True)
class ReasoningItem:
    """The model's reasoning: summary texts, and an opaque blob for stateless replay."""

    id: str
    status: str | None
    summary: tuple[str, ...]
    encrypted_content: str | None = None
    content: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WebSearchCallItem:
    """A web search the model ran; the query is known once the item is done."""

    id: str
    status: str | None
    action_type: str | None = None
    query: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionCallItem:
    """A call the model wants the app to make; answer it with a function_call_output."""

    id: str
    call_id: str
    name: str
    arguments: str
    status: str | None = None


@dataclass(frozen=True, slots=True)
class UnknownItem:
    """An output item type the app does not know, kept as the gateway sent it."""

    type: str
    raw: dict[str, Any]


OutputItem = MessageItem | ReasoningItem | WebSearchCallItem | FunctionCallItem | UnknownItem


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response; reasoning tokens are part of output tokens."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        """Return usage from the wire shape, treating missing details as zero."""
        input_tokens = fields.integer(data, "input_tokens")
        output_tokens = fields.integer(data, "output_tokens")
        return cls(
            input_tokens=input_tokens,
            cached_tokens=fields.integer(
                fields.mapping(data, "input_tokens_details"), "cached_tokens"
            ),
            output_tokens=output_tokens,
            reasoning_tokens=fields.integer(
                fields.mapping(data, "output_tokens_details"), "reasoning_tokens"
            ),
            total_tokens=fields.integer(data, "total_tokens", input_tokens + output_tokens),
        )


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """Why a response failed, as reported in `response.error` (`code` may be "429")."""

    code: str | None
    message: str
    error_type: str | None = None
    param: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorDetail:
        """Return the error of a failed response, tolerating numeric codes."""
        return cls(
            code=fields.code(data),
            message=fields.text(data, "message"),
            error_type=fields.code(data, "type"),
            param=fields.code(data, "param"),
        )


@dataclass(frozen=True, slots=True)
class Response:
    """A response object: in lifecycle events, from `create`, `retrieve` and `cancel`."""

    id: str
    status: str | None
    model: str
    output: tuple[OutputItem, ...] = ()
    usage: Usage | None = None
    incomplete_reason: str | None = None
    error: ErrorDetail | None = None
    previous_response_id: str | None = None
    created_at: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def output_text(self) -> str:
        """Return the text of every message item joined, like the official SDK does."""
        return "".join(item.text for item in self.output if isinstance(item, MessageItem))

    @property
    def function_calls(self) -> tuple[FunctionCallItem, ...]:
        """Return the function calls the model asked for, in order."""
        return tuple(item for item in self.output if isinstance(item, FunctionCallItem))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Response:
        """Return a typed response; raises `fields.MalformedField` on wrong field types."""
        usage = fields.optional_mapping(data, "usage")
        error = fields.optional_mapping(data, "error")
        incomplete = fields.mapping(data, "incomplete_details")
        status = fields.optional_text(data, "status")
        output = tuple(parse_item(item) for item in fields.list_of_mappings(data, "output"))
        if status == "completed":
            _require_call_ids(output)
        return cls(
            id=fields.identifier(data, "id"),
            status=status,
            model=fields.text(data, "model"),
            output=output,
            usage=Usage.from_dict(usage) if usage is not None else None,
            incomplete_reason=fields.optional_text(incomplete, "reason"),
            error=ErrorDetail.from_dict(error) if error is not None else None,
            previous_response_id=fields.identifier(data, "previous_response_id") or None,
            created_at=fields.number(data, "created_at"),
            raw=data,
        )


def _require_call_ids(output: tuple[OutputItem, ...]) -> None:
    """Raise if a finished response asks for a tool call the app could not answer."""
    for item in output:
        if isinstance(item, FunctionCallItem) and not item.call_id:
            raise UnanswerableToolCallError(
                f"The gateway sent the function call {item.name[:80]!r} without a call_id."
            )


def parse_item(data: dict[str, Any]) -> OutputItem:
    """Return the typed output item for one wire item."""
    parser = _ITEM_PARSERS.get(fields.text(data, "type"))
    if parser is None:
        return UnknownItem(type=fields.text(data, "type"), raw=data)
    return parser(data)


def parse_part(data: dict[str, Any]) -> ContentPart:
    """Return the typed content part for one wire part."""
    kind = fields.text(data, "type")
    if kind == "output_text":
        annotations = fields.list_of_mappings(data, "annotations")
        return OutputText(
            text=fields.text(data, "text"),
            annotations=tuple(parse_annotation(entry) for entry in annotations),
        )
    if kind == "refusal":
        return Refusal(refusal=fields.text(data, "refusal"))
    if kind == "reasoning_text":
        return ReasoningText(text=fields.text(data, "text"))
    return UnknownPart(type=kind, raw=data)


def parse_annotation(data: dict[str, Any]) -> Annotation:
    """Return a url citation, or keep any other annotation raw."""
    if fields.text(data, "type") != "url_citation":
        return OtherAnnotation(type=fields.text(data, "type"), raw=data)
    return UrlCitation(
        url=fields.text(data, "url"),
        title=fields.text(data, "title"),
        start_index=fields.integer(data, "start_index"),
        end_index=fields.integer(data, "end_index"),
    )


def _parse_message(data: dict[str, Any]) -> MessageItem:
    return MessageItem(
        id=fields.identifier(data, "id"),
        role=fields.text(data, "role", "assistant"),
        status=fields.optional_text(data, "status"),
        content=tuple(parse_part(part) for part in fields.list_of_mappings(data, "content")),
    )


def _parse_reasoning(data: dict[str, Any]) -> ReasoningItem:
    return ReasoningItem(
        id=fields.identifier(data, "id"),
        status=fields.optional_text(data, "status"),
        summary=tuple(
            fields.text(part, "text") for part in fields.list_of_mappings(data, "summary")
        ),
        encrypted_content=fields.optional_text(data, "encrypted_content"),
        content=tuple(
            fields.text(part, "text") for part in fields.list_of_mappings(data, "content")
        ),
    )


def _parse_web_search_call(data: dict[str, Any]) -> WebSearchCallItem:
    action = fields.mapping(data, "action")
    return WebSearchCallItem(
        id=fields.identifier(data, "id"),
        status=fields.optional_text(data, "status"),
        action_type=fields.optional_text(action, "type"),
        query=fields.optional_text(action, "query"),
    )


def _parse_function_call(data: dict[str, Any]) -> FunctionCallItem:
    return FunctionCallItem(
        id=fields.identifier(data, "id"),
        call_id=fields.identifier(data, "call_id"),
        name=fields.text(data, "name"),
        arguments=fields.text(data, "arguments"),
        status=fields.optional_text(data, "status"),
    )


_ITEM_PARSERS = {
    "message": _parse_message,
    "reasoning": _parse_reasoning,
    "web_search_call": _parse_web_search_call,
    "function_call": _parse_function_call,
}
