"""Errors raised by the gateway client, each with a message fit to show an end user.

Every failure the client can meet becomes one `GatewayError` subclass, so callers catch one
base class and show `error.user_message`. `str(error)` is the technical detail for logs, and
`detail_for_staff()` is one line with everything the gateway said (status, type, code,
param, message) for an administrator. Which class a gateway reply becomes is decided in
one place, `classify.py`, for HTTP replies and in-stream failures alike.

The gateway's own error text can echo the API key (some gateways repeat the bad key in a
401 body, in whatever format the key has), so every string an error keeps passes through
`clean()`: the configured key and anything key-shaped are replaced, and NUL characters,
which PostgreSQL refuses in text, are dropped.

Failures *inside* a stream (`response.failed`, `error` events) are not raised by the
client: the stream yields them as ordinary events and ends, because the caller needs the
text received so far. Their `as_error()` turns such an event into the matching exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ContentRefusedError",
    "ContextTooLongError",
    "GatewayError",
    "GatewayTimeoutError",
    "ModelNotFoundError",
    "NoModelListError",
    "NotFoundError",
    "PreviousResponseNotFoundError",
    "QuotaExhaustedError",
    "RateLimitedError",
    "ResponseFailedError",
    "StreamBrokenError",
    "UnanswerableToolCallError",
    "UnavailableError",
    "UnsupportedParameterError",
    "clean",
    "parse_retry_after",
    "redact",
]

# Anything shaped like an OpenAI-style key, including masked echoes such as "sk-ab***yz".
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-*.]+")
# A masked echo of a key in any other format ("gw-K***9f"): its visible ends are still
# part of the key, so the whole token goes.
_MASKED_PATTERN = re.compile(r"[A-Za-z0-9_\-.]*\*{3,}[A-Za-z0-9_\-.]*")
REDACTED = "[redacted]"
MESSAGE_LIMIT = 1000  # characters of the gateway's message kept
FIELD_LIMIT = 200  # characters kept of a code, type or param
_ABSENT = "\N{EN DASH}"  # a field the gateway did not send, in staff details


def redact(text: str, secret: str | None = None) -> str:
    """Return `text` with the given secret and anything key-shaped replaced."""
    if secret:
        text = text.replace(secret, REDACTED)
    text = _KEY_PATTERN.sub(REDACTED, text)
    return _MASKED_PATTERN.sub(REDACTED, text) if "***" in text else text


def clean(text: str, secret: str | None = None, limit: int = MESSAGE_LIMIT) -> str:
    """Return gateway text safe to keep: no key, no NUL characters, at most `limit` long."""
    return redact(text.replace("\x00", ""), secret)[:limit]


def _optional_clean(text: str | None, secret: str | None) -> str | None:
    return clean(text, secret, FIELD_LIMIT) or None if text is not None else None


class GatewayError(Exception):
    """Base class: something went wrong talking to the model gateway.

    `gateway_message`, `error_type`, `code`, `param` and `status_code` are what the gateway
    said (redacted), kept so an administrator can see why without reading the logs.
    """

    default_user_message = "The model service had a problem. Please try again."

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        error_type: str | None = None,
        gateway_message: str | None = None,
        in_stream: bool = False,
        secret: str | None = None,
    ) -> None:
        self.detail = clean(detail, secret)
        self.status_code = status_code
        self.code = _optional_clean(code, secret)
        self.param = _optional_clean(param, secret)
        self.error_type = _optional_clean(error_type, secret)
        self.gateway_message = clean(gateway_message, secret) if gateway_message else ""
        self.in_stream = in_stream
        super().__init__(self.detail)

    @property
    def user_message(self) -> str:
        """Return a short sentence fit to show an end user."""
        return self.default_user_message

    def detail_for_staff(self) -> str:
        """Return one line with what the gateway said, for staff (never for end users).

        For example "HTTP 400 · invalid_request_error · code 400 · param - · litellm...",
        where a dash (an en dash) stands for a field the gateway did not send. A failure
        reported inside a response (a stream event, a failed response) says "in response".
        """
        if self.status_code is not None:
            where = f"HTTP {self.status_code}"
        else:
            where = "in response" if self.in_stream else "no HTTP status"
        message = " ".join((self.gateway_message or self.detail).split())
        return " · ".join(
            (
                where,
                self.error_type or _ABSENT,
                f"code {self.code or _ABSENT}",
                f"param {self.param or _ABSENT}",
                message or _ABSENT,
            )
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.detail!r}, status_code={self.status_code!r}, "
            f"code={self.code!r}, param={self.param!r}, error_type={self.error_type!r})"
        )


class AuthenticationError(GatewayError):
    """The gateway refused the API key (401, 403, or LiteLLM's 400 "No connected db.")."""

    default_user_message = (
        "The model service rejected this app's credentials. Please tell an administrator."
    )


class RateLimitedError(GatewayError):
    """The gateway asked us to slow down (429); `retry_after` says for how long, if known."""

    def __init__(self, detail: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after

    @property
    def user_message(self) -> str:
        if self.retry_after is None:
            return "The model service is busy right now. Please try again in a moment."
        seconds = max(1, math.ceil(self.retry_after))
        unit = "second" if seconds == 1 else "seconds"
        return f"The model service is busy right now. Please try again in {seconds} {unit}."


class QuotaExhaustedError(GatewayError):
    """The gateway account has no quota or credit left; retrying cannot help."""

    default_user_message = (
        "The model service's usage quota is used up. Please tell an administrator."
    )


class BadRequestError(GatewayError):
    """The gateway rejected the request as invalid; `param` names the offending field."""

    default_user_message = "The model service could not accept this request."


class UnsupportedParameterError(BadRequestError):
    """The model (or the gateway in front of it) refused a parameter the app added.

    `unsupported_param` names the request body key to drop next time, as the app spells it:
    "reasoning", "reasoning.summary", "include", "stream_options", "store",
    "tools.web_search", "tools", "max_output_tokens" or "instructions"; None when the
    gateway's words do not say which.
    """

    def __init__(self, detail: str, *, unsupported_param: str | None = None, **kwargs: Any):
        super().__init__(detail, **kwargs)
        self.unsupported_param = unsupported_param

    @property
    def user_message(self) -> str:
        if self.unsupported_param is None:
            return (
                "This model does not accept one of the options sent. "
                "Pick another model or ask an administrator."
            )
        return (
            f"This model does not accept one of the options sent ({self.unsupported_param}). "
            "Try again, or pick another model."
        )


class ContextTooLongError(BadRequestError):
    """The conversation (with its attachments) is longer than the model's context window."""

    default_user_message = (
        "This conversation is too long for the model. Start a new conversation or pick "
        "another model."
    )


class ContentRefusedError(BadRequestError):
    """A content policy or filter of the model service refused the request."""

    default_user_message = "The model service refused this request because of its content policy."


class PreviousResponseNotFoundError(BadRequestError):
    """The gateway no longer has the response we tried to continue from."""

    default_user_message = (
        "The model service no longer remembers the earlier part of this conversation."
    )


class ModelNotFoundError(BadRequestError):
    """The model does not exist on the gateway, or has no route (channel, deployment) there."""

    default_user_message = (
        "This model is not known to the model service. Pick another model or ask an "
        "administrator to check the catalogue."
    )


class NotFoundError(BadRequestError):
    """A stored response (or another resource) does not exist on the gateway."""

    default_user_message = "The model service could not find that response."


class NoModelListError(NotFoundError):
    """The gateway has no usable `GET /models` (a 404, or a reply that is not a list)."""

    default_user_message = "The model service does not publish a list of its models."


class UnavailableError(GatewayError):
    """The gateway is down or failing: a 5xx status or a failed connection."""

    default_user_message = "The model service is unavailable right now. Please try again shortly."


class GatewayTimeoutError(UnavailableError):
    """The gateway took longer than the configured timeout (ours, or a 504 from it)."""

    default_user_message = "The model service took too long to answer. Please try again."


class StreamBrokenError(GatewayError):
    """The answer stream broke: connection lost, no terminal event, or unreadable data."""

    default_user_message = (
        "The answer was cut off because the connection to the model service broke."
    )


class ResponseFailedError(GatewayError):
    """The model failed while generating (`response.failed` or an `error` event)."""

    default_user_message = "The model failed while answering. Please try again."


class UnanswerableToolCallError(ResponseFailedError):
    """The model asked for a tool call without a `call_id`, so its result cannot be sent."""

    default_user_message = "The model service sent a tool call the app cannot answer (no call id)."


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Return the server's retry hint in seconds (`retry-after-ms` wins), or None."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = None
        if value is not None and math.isfinite(value) and value >= 0:
            return value
    seconds = headers.get("retry-after")
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except ValueError:
        return _seconds_until_http_date(seconds)
    return value if math.isfinite(value) and value >= 0 else None


def _seconds_until_http_date(text: str) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
