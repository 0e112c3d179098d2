"""Typed stream events of the Responses API, and `parse_event` to build them.

One frozen dataclass per event type the app uses; the class attribute `type` holds the wire
name. Event types the app does not know become `UnknownEvent` and are logged once per
type, never fatal, because gateways add new events all the time. Unknown fields are
ignored and missing optional fields get defaults (gateways omit `sequence_number`, item
`status` and `output`).

Terminal events end a stream: `ResponseCompleted`, `ResponseIncomplete`, `ResponseFailed`
and `ErrorEvent`. The two failure events are yielded like any other (the caller decides
what to do with the text received so far); `as_error()` turns them into an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from . import fields
from .classify import error_for_code
from .errors import GatewayError, StreamBrokenError
from .response import (
    Annotation,
    ContentPart,
    OutputItem,
    Response,
    parse_annotation,
    parse_item,
    parse_part,
)

__all__ = [
    "TERMINAL_EVENTS",
    "ContentPartAdded",
    "ContentPartDone",
    "ErrorEvent",
    "Event",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputTextAnnotationAdded",
    "OutputTextDelta",
    "OutputTextDone",
    "ReasoningSummaryPartAdded",
    "ReasoningSummaryPartDone",
    "ReasoningSummaryTextDelta",
    "ReasoningSummaryTextDone",
    "ReasoningTextDelta",
    "ReasoningTextDone",
    "RefusalDelta",
    "RefusalDone",
    "ResponseCompleted",
    "ResponseCreated",
    "ResponseFailed",
    "ResponseInProgress",
    "ResponseIncomplete",
    "ResponseQueued",
    "UnknownEvent",
    "WebSearchCallCompleted",
    "WebSearchCallInProgress",
    "WebSearchCallSearching",
    "parse_event",
]

logger = logging.getLogger(__name__)

# Unknown types seen so far; capped so a gateway inventing names cannot grow it forever.
_logged_unknown_types: set[str] = set()
_UNKNOWN_TYPES_LOGGED_AT_MOST = 200


# Lifecycle events: each carries the whole response object.


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    type: ClassVar[str] = "response.created"
    response: Response
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseQueued:
    type: ClassVar[str] = "response.queued"
    response: Response
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseInProgress:
    type: ClassVar[str] = "response.in_progress"
    response: Response
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseCompleted:
    type: ClassVar[str] = "response.completed"
    response: Response
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseIncomplete:
    """The answer stopped early; `response.incomplete_reason` says why."""

    type: ClassVar[str] = "response.incomplete"
    response: Response
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseFailed:
    """The model failed; `response.error` says why."""

    type: ClassVar[str] = "response.failed"
    response: Response
    sequence_number: int | None = None

    def as_error(self, *, secret: str | None = None) -> GatewayError:
        """Return the exception matching this failure (`secret` is redacted from it)."""
        error = self.response.error
        if error is None:
            return error_for_code(None, "The response failed without an error message.")
        return error_for_code(
            error.code,
            error.message,
            param=error.param,
            error_type=error.error_type,
            secret=secret,
        )


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """An `error` event, from either the flat (documented) or nested (seen on the wire) shape.

    `status` is the HTTP-like status some gateways add beside the nested error.
    """

    type: ClassVar[str] = "error"
    message: str
    code: str | None = None
    param: str | None = None
    error_type: str | None = None
    sequence_number: int | None = None
    status: int | None = None

    def as_error(self, *, secret: str | None = None) -> GatewayError:
        """Return the exception matching this error (`secret` is redacted from it)."""
        return error_for_code(
            self.code,
            self.message,
            param=self.param,
            error_type=self.error_type,
            status=self.status,
            secret=secret,
        )


# Output items and content parts.


@dataclass(frozen=True, slots=True)
class OutputItemAdded:
    type: ClassVar[str] = "response.output_item.added"
    output_index: int
    item: OutputItem
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class OutputItemDone:
    type: ClassVar[str] = "response.output_item.done"
    output_index: int
    item: OutputItem
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ContentPartAdded:
    type: ClassVar[str] = "response.content_part.added"
    item_id: str
    output_index: int
    content_index: int
    part: ContentPart
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ContentPartDone:
    type: ClassVar[str] = "response.content_part.done"
    item_id: str
    output_index: int
    content_index: int
    part: ContentPart
    sequence_number: int | None = None


# Answer text and refusals.


@dataclass(frozen=True, slots=True)
class OutputTextDelta:
    type: ClassVar[str] = "response.output_text.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class OutputTextDone:
    type: ClassVar[str] = "response.output_text.done"
    item_id: str
    output_index: int
    content_index: int
    text: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class OutputTextAnnotationAdded:
    """A citation attached to the text; `annotation` is None if the gateway sent none."""

    type: ClassVar[str] = "response.output_text.annotation.added"
    item_id: str
    output_index: int
    content_index: int
    annotation_index: int
    annotation: Annotation | None
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    type: ClassVar[str] = "response.refusal.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class RefusalDone:
    type: ClassVar[str] = "response.refusal.done"
    item_id: str
    output_index: int
    content_index: int
    refusal: str
    sequence_number: int | None = None


# Reasoning summaries and raw reasoning text.


@dataclass(frozen=True, slots=True)
class ReasoningSummaryPartAdded:
    type: ClassVar[str] = "response.reasoning_summary_part.added"
    item_id: str
    output_index: int
    summary_index: int
    text: str = ""
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ReasoningSummaryPartDone:
    type: ClassVar[str] = "response.reasoning_summary_part.done"
    item_id: str
    output_index: int
    summary_index: int
    text: str = ""
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ReasoningSummaryTextDelta:
    type: ClassVar[str] = "response.reasoning_summary_text.delta"
    item_id: str
    output_index: int
    summary_index: int
    delta: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ReasoningSummaryTextDone:
    type: ClassVar[str] = "response.reasoning_summary_text.done"
    item_id: str
    output_index: int
    summary_index: int
    text: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ReasoningTextDelta:
    type: ClassVar[str] = "response.reasoning_text.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class ReasoningTextDone:
    type: ClassVar[str] = "response.reasoning_text.done"
    item_id: str
    output_index: int
    content_index: int
    text: str
    sequence_number: int | None = None


# Built-in web search.


@dataclass(frozen=True, slots=True)
class WebSearchCallInProgress:
    type: ClassVar[str] = "response.web_search_call.in_progress"
    item_id: str
    output_index: int
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class WebSearchCallSearching:
    type: ClassVar[str] = "response.web_search_call.searching"
    item_id: str
    output_index: int
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class WebSearchCallCompleted:
    type: ClassVar[str] = "response.web_search_call.completed"
    item_id: str
    output_index: int
    sequence_number: int | None = None


# Function calls.


@dataclass(frozen=True, slots=True)
class FunctionCallArgumentsDelta:
    type: ClassVar[str] = "response.function_call_arguments.delta"
    item_id: str
    output_index: int
    delta: str
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class FunctionCallArgumentsDone:
    type: ClassVar[str] = "response.function_call_arguments.done"
    item_id: str
    output_index: int
    arguments: str
    name: str | None = None
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event type the app does not know, kept as sent."""

    type: str
    data: dict[str, Any]
    sequence_number: int | None = None


Event = (
    ResponseCreated
    | ResponseQueued
    | ResponseInProgress
    | ResponseCompleted
    | ResponseIncomplete
    | ResponseFailed
    | ErrorEvent
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | OutputTextAnnotationAdded
    | RefusalDelta
    | RefusalDone
    | ReasoningSummaryPartAdded
    | ReasoningSummaryPartDone
    | ReasoningSummaryTextDelta
    | ReasoningSummaryTextDone
    | ReasoningTextDelta
    | ReasoningTextDone
    | WebSearchCallInProgress
    | WebSearchCallSearching
    | WebSearchCallCompleted
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | UnknownEvent
)

TERMINAL_EVENTS = (ResponseCompleted, ResponseIncomplete, ResponseFailed, ErrorEvent)


def parse_event(event_type: str, data: dict[str, Any]) -> Event:
    """Return the typed event for one decoded `data:` object.

    Raises `StreamBrokenError` when a known event has fields of the wrong type.
    """
    parser = _PARSERS.get(event_type)
    try:
        if parser is None:
            _log_unknown_type(event_type)
            return UnknownEvent(event_type, data, fields.optional_int(data, "sequence_number"))
        return parser(data)
    except fields.MalformedField as error:
        raise StreamBrokenError(f"Malformed {event_type!r} event: {error}") from None


def _log_unknown_type(event_type: str) -> None:
    if event_type in _logged_unknown_types:
        return
    if len(_logged_unknown_types) >= _UNKNOWN_TYPES_LOGGED_AT_MOST:
        return
    _logged_unknown_types.add(event_type)
    logger.warning("Ignoring unknown gateway event type %r (logged once).", event_type[:100])


def _sequence(data: dict[str, Any]) -> int | None:
    return fields.optional_int(data, "sequence_number")


def _response(data: dict[str, Any]) -> Response:
    return Response.from_dict(fields.mapping(data, "response"))


def _lifecycle(cls: type) -> Callable[[dict[str, Any]], Event]:
    def parse(data: dict[str, Any]) -> Event:
        return cls(response=_response(data), sequence_number=_sequence(data))

    return parse


def _output_item(cls: type) -> Callable[[dict[str, Any]], Event]:
    def parse(data: dict[str, Any]) -> Event:
        return cls(
            output_index=fields.integer(data, "output_index"),
            item=parse_item(fields.mapping(data, "item")),
            sequence_number=_sequence(data),
        )

    return parse


def _content_part(cls: type) -> Callable[[dict[str, Any]], Event]:
    def parse(data: dict[str, Any]) -> Event:
        return cls(part=parse_part(fields.mapping(data, "part")), **_content_position(data))

    return parse


def _content_text(cls: type, text_field: str) -> Callable[[dict[str, Any]], Event]:
    """Build a parser for events carrying one text field at a content position."""

    def parse(data: dict[str, Any]) -> Event:
        return cls(**{text_field: fields.text(data, text_field)}, **_content_position(data))

    return parse


def _summary_text(cls: type, text_field: str) -> Callable[[dict[str, Any]], Event]:
    def parse(data: dict[str, Any]) -> Event:
        return cls(**{text_field: fields.text(data, text_field)}, **_summary_position(data))

    return parse


def _summary_part(cls: type) -> Callable[[dict[str, Any]], Event]:
    def parse(data: dict[str, Any]) -> Event:
        part = fields.mapping(data, "part")
        return cls(text=fields.text(part, "text"), **_summary_position(data))

    return parse


def _web_search(cls: type) -> Callable[[dict[str, Any]], Event]:
    def parse(data: dict[str, Any]) -> Event:
        return cls(**_item_position(data))

    return parse


def _item_position(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "item_id": fields.identifier(data, "item_id"),
        "output_index": fields.integer(data, "output_index"),
        "sequence_number": _sequence(data),
    }


def _content_position(data: dict[str, Any]) -> dict[str, Any]:
    return {**_item_position(data), "content_index": fields.integer(data, "content_index")}


def _summary_position(data: dict[str, Any]) -> dict[str, Any]:
    return {**_item_position(data), "summary_index": fields.integer(data, "summary_index")}


def _annotation_added(data: dict[str, Any]) -> Event:
    annotation = fields.optional_mapping(data, "annotation")
    return OutputTextAnnotationAdded(
        annotation_index=fields.integer(data, "annotation_index"),
        annotation=parse_annotation(annotation) if annotation is not None else None,
        **_content_position(data),
    )


def _function_arguments_delta(data: dict[str, Any]) -> Event:
    return FunctionCallArgumentsDelta(delta=fields.text(data, "delta"), **_item_position(data))


def _function_arguments_done(data: dict[str, Any]) -> Event:
    return FunctionCallArgumentsDone(
        arguments=fields.text(data, "arguments"),
        name=fields.optional_text(data, "name"),
        **_item_position(data),
    )


def _error(data: dict[str, Any]) -> Event:
    # Real streams nest the details under "error"; the documented shape is flat.
    nested = fields.optional_mapping(data, "error")
    details = nested if nested is not None else data
    status = data.get("status")
    return ErrorEvent(
        message=fields.text(details, "message") or "The model service reported an error.",
        code=fields.code(details),
        param=fields.code(details, "param"),
        error_type=fields.code(details, "type") if nested is not None else None,
        sequence_number=_sequence(data),
        status=status if isinstance(status, int) and not isinstance(status, bool) else None,
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "response.created": _lifecycle(ResponseCreated),
    "response.queued": _lifecycle(ResponseQueued),
    "response.in_progress": _lifecycle(ResponseInProgress),
    "response.completed": _lifecycle(ResponseCompleted),
    "response.incomplete": _lifecycle(ResponseIncomplete),
    "response.failed": _lifecycle(ResponseFailed),
    "error": _error,
    "response.output_item.added": _output_item(OutputItemAdded),
    "response.output_item.done": _output_item(OutputItemDone),
    "response.content_part.added": _content_part(ContentPartAdded),
    "response.content_part.done": _content_part(ContentPartDone),
    "response.output_text.delta": _content_text(OutputTextDelta, "delta"),
    "response.output_text.done": _content_text(OutputTextDone, "text"),
    "response.output_text.annotation.added": _annotation_added,
    "response.refusal.delta": _content_text(RefusalDelta, "delta"),
    "response.refusal.done": _content_text(RefusalDone, "refusal"),
    "response.reasoning_summary_part.added": _summary_part(ReasoningSummaryPartAdded),
    "response.reasoning_summary_part.done": _summary_part(ReasoningSummaryPartDone),
    "response.reasoning_summary_text.delta": _summary_text(ReasoningSummaryTextDelta, "delta"),
    "response.reasoning_summary_text.done": _summary_text(ReasoningSummaryTextDone, "text"),
    "response.reasoning_text.delta": _content_text(ReasoningTextDelta, "delta"),
    "response.reasoning_text.done": _content_text(ReasoningTextDone, "text"),
    "response.web_search_call.in_progress": _web_search(WebSearchCallInProgress),
    "response.web_search_call.searching": _web_search(WebSearchCallSearching),
    "response.web_search_call.completed": _web_search(WebSearchCallCompleted),
    "response.function_call_arguments.delta": _function_arguments_delta,
    "response.function_call_arguments.done": _function_arguments_done,
}
