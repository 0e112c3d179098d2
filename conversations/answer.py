"""What an answer amounts to so far, built up one gateway event at a time.

`AnswerState.apply()` is the only place that interprets stream events, so the
generation, the tests and any future consumer of events agree on what was said, how
the response ended and what it cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conversations.gateway import errors, events
from conversations.gateway.errors import GatewayError
from conversations.gateway.request import replay_output
from conversations.gateway.response import Response, Usage

__all__ = ["AnswerState", "Outcome"]


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


@dataclass
class AnswerState:
    text: str = ""
    refusal: str = ""
    response_id: str = ""
    response: Response | None = None
    usage: Usage | None = None
    outcome: Outcome | None = None
    replay_items: list[dict] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    def take_pending(self) -> str:
        """Return the text added since the last call, for the live renderer."""
        pending = "".join(self._pending)
        self._pending.clear()
        return pending

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
            case events.OutputTextDelta(delta=delta):
                self.add_text(delta)
            case events.RefusalDelta(delta=delta):
                self.refusal += delta
            case events.RefusalDone(refusal=refusal):
                self.refusal = refusal
                self.add_text(("\n\n" if self.text else "") + refusal)
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

    def fail(self, error: GatewayError) -> None:
        """End the answer because the gateway call failed outside the stream."""
        if not self.finished:
            self.outcome = self._failure(error)

    def cancel(self) -> None:
        if not self.finished:
            self.outcome = Outcome("cancelled", "Stopped.", "stopped")

    def _end(self, response: Response, outcome: Outcome) -> None:
        self.response = response
        self.response_id = response.id or self.response_id
        self.usage = response.usage
        self.replay_items = replay_output(response.output)
        if not self.finished:
            self.outcome = outcome

    @staticmethod
    def _failure(error: GatewayError) -> Outcome:
        return Outcome("failed", error.user_message, error_code_for(error))


# Most specific first: a short stable code per kind of failure, for styling and tests.
ERROR_CODES: tuple[tuple[type[GatewayError], str], ...] = (
    (errors.PreviousResponseNotFoundError, "previous_not_found"),
    (errors.ModelNotFoundError, "model_not_found"),
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
