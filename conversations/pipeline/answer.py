"""What an answer amounts to so far, built up one gateway event at a time.

`AnswerState.apply()` is the only place that interprets stream events, so the
generation, the tests and any future consumer of events agree on what was said, what
the model thought and searched, how the response ended and what it cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from conversations.gateway import errors, events
from conversations.gateway.errors import GatewayError
from conversations.gateway.request import function_call_output, replay_output
from conversations.gateway.response import (
    FunctionCallItem,
    MessageItem,
    Response,
    UrlCitation,
    Usage,
    WebSearchCallItem,
)

__all__ = ["AnswerState", "Outcome", "safe_citation"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an answer ended, in the Message model's status vocabulary."""

    status: str
    error: str = ""
    error_code: str = ""


INCOMPLETE_REASONS = {
    "max_output_tokens": "The answer was cut off because it reached the length limit.",
    "content_filter": "The answer was cut off by the model service's content filter.",
}


def safe_citation(url: str, title: str, start: int, end: int) -> dict | None:
    """Return a citation fit to link to, or None: only http(s) URLs become links."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return {
        "url": url,
        "title": (title or parts.hostname)[:300],
        "domain": parts.hostname.removeprefix("www."),
        "start_index": start,
        "end_index": end,
    }


@dataclass
class AnswerState:
    text: str = ""
    refusal: str = ""
    response_id: str = ""
    response: Response | None = None
    usage: Usage | None = None
    outcome: Outcome | None = None
    # The failure behind a "failed" outcome, for what the gateway said and for retries.
    error: GatewayError | None = None
    replay_items: list[dict] = field(default_factory=list)
    # What the bubble shows beside the text: reasoning summary parts, web searches,
    # tool steps and cited sources. `extras_changed` tells the renderer to re-send them.
    reasoning: dict[tuple[str, int], str] = field(default_factory=dict)
    searches: list[dict] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)
    citations: list[dict] = field(default_factory=list)
    extras_changed: bool = False
    # Usage of earlier rounds of a tool-calling turn, oldest first.
    round_usages: list[Usage] = field(default_factory=list)
    # Usage of responses thrown away and asked again (the gateway had forgotten the
    # conversation): billed all the same.
    discarded_usages: list[Usage] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)
    _item_start: int = 0

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def reasoning_text(self) -> str:
        return "\n\n".join(text for text in self.reasoning.values() if text.strip())

    @property
    def pending_calls(self) -> tuple[FunctionCallItem, ...]:
        """Return the function calls the last completed response asks the app to make."""
        if self.response is None or self.outcome is None or self.outcome.status != "complete":
            return ()
        return self.response.function_calls

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def take_pending(self) -> str:
        """Return the text added since the last call, for the live renderer."""
        pending = "".join(self._pending)
        self._pending.clear()
        return pending

    def take_extras_changed(self) -> bool:
        changed, self.extras_changed = self.extras_changed, False
        return changed

    def add_text(self, delta: str) -> None:
        self.text += delta
        self._pending.append(delta)

    def apply(self, event: events.Event) -> None:
        """Fold one stream event into the answer."""
        match event:
            case (
                events.ResponseCreated(response=response)
                | events.ResponseInProgress(response=response)
            ):
                self.response_id = response.id or self.response_id
            case events.OutputItemAdded(item=MessageItem()):
                if self.text and not self.text.endswith("\n\n"):
                    self.add_text("\n\n")  # a new message item after a tool round
                self._item_start = len(self.text)
            case events.OutputItemAdded(item=WebSearchCallItem(id=item_id)):
                self._search(item_id, status="searching")
            case events.OutputItemDone(item=WebSearchCallItem(id=item_id, query=query)):
                self._search(item_id, status="completed", query=query)
            case events.OutputTextDelta(delta=delta):
                self.add_text(delta)
            case events.OutputTextAnnotationAdded(annotation=UrlCitation() as cite):
                self._cite(cite)
            case events.RefusalDelta(delta=delta):
                self.refusal += delta
            case events.RefusalDone(refusal=refusal):
                self.refusal = refusal
                self.add_text(("\n\n" if self.text else "") + refusal)
            case events.ReasoningSummaryTextDelta(item_id=item_id, summary_index=index, delta=d):
                self._think((item_id, index), d)
            case events.ReasoningTextDelta(item_id=item_id, content_index=index, delta=d):
                self._think((item_id, -1 - index), d)
            case events.ResponseCompleted(response=response):
                self._end(response, Outcome("complete"))
            case events.ResponseIncomplete(response=response):
                reason = response.incomplete_reason or "max_output_tokens"
                message = INCOMPLETE_REASONS.get(reason, "The answer was cut off.")
                self._end(response, Outcome("incomplete", message, "cut_off"))
            case events.ResponseFailed(response=response):
                self._end(response, self._failure(event.as_error()))
            case events.ErrorEvent():
                if not self.finished:
                    self.outcome = self._failure(event.as_error())
            case _:
                pass

    def next_round(self) -> None:
        """Get ready for the response that follows the app's function-call outputs."""
        if self.usage is not None:
            self.round_usages.append(self.usage)
        self.usage = None
        self.outcome = None
        self.response = None

    def record_tool_call(self, call: FunctionCallItem, result) -> None:
        """Keep a tool step for the transcript, and its output for stateless replays."""
        self.replay_items.append(function_call_output(call.call_id, result.output))
        self.tool_calls.append(
            {
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
                "output": result.output,
                "ok": result.ok,
                "duration_ms": round(result.duration_ms, 1),
            }
        )
        self.extras_changed = True

    def fail(self, error: GatewayError) -> None:
        """End the answer because the gateway call failed outside the stream."""
        if not self.finished:
            self.outcome = self._failure(error)

    @property
    def all_usages(self) -> list[Usage]:
        """Return the usage of every response of the answer, discarded ones included."""
        return [
            *self.discarded_usages,
            *self.round_usages,
            *([self.usage] if self.usage else []),
        ]

    def discard_response(self) -> None:
        """Forget a response that ended before any of its text, to send its request again.

        Earlier rounds of the turn (their text, tool calls and usage) stay.
        """
        if self.usage is not None:
            self.discarded_usages.append(self.usage)
            self.usage = None
        self.outcome = None
        self.error = None
        self.response = None

    def cancel(self) -> None:
        if not self.finished:
            self.outcome = Outcome("cancelled", "Stopped.", "stopped")

    def _think(self, key: tuple[str, int], delta: str) -> None:
        self.reasoning[key] = self.reasoning.get(key, "") + delta
        self.extras_changed = True

    def _search(self, item_id: str, *, status: str, query: str | None = None) -> None:
        for search in self.searches:
            if search["id"] == item_id:
                search["status"] = status
                search["query"] = query or search["query"]
                break
        else:
            self.searches.append({"id": item_id, "status": status, "query": query or ""})
        self.extras_changed = True

    def _cite(self, cite: UrlCitation) -> None:
        start = self._item_start
        citation = safe_citation(
            cite.url, cite.title, start + cite.start_index, start + cite.end_index
        )
        if citation is not None and citation not in self.citations:
            self.citations.append(citation)
            self.extras_changed = True

    def _end(self, response: Response, outcome: Outcome) -> None:
        self.response = response
        self.response_id = response.id or self.response_id
        self.usage = response.usage
        self.replay_items.extend(replay_output(response.output))
        for item in response.output:
            if isinstance(item, WebSearchCallItem):
                self._search(item.id, status="completed", query=item.query)
        if not self.finished:
            self.outcome = outcome

    def _failure(self, error: GatewayError) -> Outcome:
        if self.error is None:
            self.error = error
        return Outcome("failed", error.user_message, error_code_for(error))


# Most specific first: a short stable code per kind of failure, for styling and tests.
ERROR_CODES: tuple[tuple[type[GatewayError], str], ...] = (
    (errors.PreviousResponseNotFoundError, "previous_not_found"),
    (errors.ModelNotFoundError, "model_not_found"),
    (errors.UnsupportedParameterError, "unsupported_param"),
    (errors.ContextTooLongError, "context_too_long"),
    (errors.ContentRefusedError, "content_refused"),
    (errors.BadRequestError, "refused"),
    (errors.AuthenticationError, "auth"),
    (errors.QuotaExhaustedError, "gateway_quota"),
    (errors.RateLimitedError, "rate_limited"),
    (errors.GatewayTimeoutError, "timeout"),
    (errors.StreamBrokenError, "cut_off"),
    (errors.UnavailableError, "unavailable"),
)


def error_code_for(error: GatewayError) -> str:
    """Return a short stable code for the kind of failure, for styling and tests."""
    for kind, code in ERROR_CODES:
        if isinstance(error, kind):
            return code
    return "failed"
