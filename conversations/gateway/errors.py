"""Errors raised by the gateway client, each with a message fit to show an end user.

Every failure the client can meet becomes one `GatewayError` subclass, so callers catch one
base class and show `error.user_message`. `str(error)` is the technical detail for logs.

The gateway's own error text can echo the API key (some gateways repeat the bad key in a
401 body), so every detail string passes through `redact()` before it is stored.

Failures *inside* a stream (`response.failed`, `error` events) are not raised by the
client: the stream yields them as ordinary events and ends, because the caller needs the
text received so far. `error_for_code()` turns such an event into the matching exception
for callers that want to raise it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "GatewayError",
    "GatewayTimeoutError",
    "ModelNotFoundError",
    "NotFoundError",
    "PreviousResponseNotFoundError",
    "QuotaExhaustedError",
    "RateLimitedError",
    "ResponseFailedError",
    "StreamBrokenError",
    "UnavailableError",
    "error_for_code",
    "error_from_http",
    "parse_retry_after",
    "redact",
]

# Anything shaped like an OpenAI-style key, including masked echoes such as "sk-ab***yz".
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-*.]+")
_DETAIL_LIMIT = 500


def redact(text: str, secret: str | None = None) -> str:
    """Return `text` with the given secret and anything key-shaped replaced."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", text)


class GatewayError(Exception):
    """Base class: something went wrong talking to the model gateway."""

    default_user_message = "The model service had a problem. Please try again."

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        self.detail = redact(detail)[:_DETAIL_LIMIT]
        self.status_code = status_code
        self.code = redact(code) if code is not None else None
        self.param = redact(param) if param is not None else None
        super().__init__(self.detail)

    @property
    def user_message(self) -> str:
        """Return a short sentence fit to show an end user."""
        return self.default_user_message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.detail!r}, status_code={self.status_code!r}, "
            f"code={self.code!r}, param={self.param!r})"
        )


class AuthenticationError(GatewayError):
    """The gateway refused the API key (401) or the key lacks permission (403)."""

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


class PreviousResponseNotFoundError(BadRequestError):
    """The gateway no longer has the response we tried to continue from."""

    default_user_message = (
        "The model service no longer remembers the earlier part of this conversation."
    )


class ModelNotFoundError(BadRequestError):
    """The model does not exist on the gateway, or this key cannot use it."""

    default_user_message = "This model is not available on the model service."


class NotFoundError(BadRequestError):
    """A stored response (or another resource) does not exist on the gateway."""

    default_user_message = "The model service could not find that response."


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


def error_for_code(
    code: str | None,
    message: str,
    *,
    param: str | None = None,
    error_type: str | None = None,
) -> GatewayError:
    """Return the exception matching an error code reported inside a stream."""
    if "insufficient_quota" in (code, error_type) or code == "credit_balance_exhausted":
        return QuotaExhaustedError(message, code=code, param=param)
    if code in ("rate_limit_exceeded", "too_many_requests"):
        return RateLimitedError(message, code=code, param=param)
    if code == "previous_response_not_found":
        return PreviousResponseNotFoundError(message, code=code, param=param)
    if code == "model_not_found":
        return ModelNotFoundError(message, code=code, param=param)
    return ResponseFailedError(message, code=code, param=param)


def error_from_http(
    status_code: int, body: bytes, headers: Mapping[str, str], *, secret: str | None = None
) -> GatewayError:
    """Return the exception for a non-2xx gateway reply (status, raw body and headers)."""
    if secret:
        body = body.replace(secret.encode(), b"[redacted]")
    fields = _error_fields(body)
    message = str(fields.get("message") or f"HTTP {status_code}")
    code = _optional_str(fields.get("code"))
    error_type = _optional_str(fields.get("type"))
    param = _optional_str(fields.get("param"))
    kwargs: dict[str, Any] = {"status_code": status_code, "code": code, "param": param}

    if status_code in (401, 403):
        return AuthenticationError(message, **kwargs)
    if status_code == 429:
        if "insufficient_quota" in (code, error_type):
            return QuotaExhaustedError(message, **kwargs)
        return RateLimitedError(message, retry_after=parse_retry_after(headers), **kwargs)
    if code == "previous_response_not_found":
        return PreviousResponseNotFoundError(message, **kwargs)
    if code == "model_not_found":
        return ModelNotFoundError(message, **kwargs)
    if status_code == 404:
        return NotFoundError(message, **kwargs)
    if status_code in (408, 504):
        return GatewayTimeoutError(message, **kwargs)
    if status_code >= 500:
        return UnavailableError(message, **kwargs)
    return BadRequestError(message, **kwargs)


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


def _error_fields(body: bytes) -> dict[str, Any]:
    """Return the `error` object of an OpenAI-style error body, tolerating anything else."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        text = body.decode("utf-8", "replace").strip()
        return {"message": text[:200]} if text else {}
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict):
            return inner
        if isinstance(inner, str):
            return {"message": inner}
        return parsed
    return {}


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
