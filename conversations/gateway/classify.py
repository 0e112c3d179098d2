"""Decide which `GatewayError` a gateway's complaint is, from what the gateway said.

One function, `classify()`, reads the HTTP status (or, inside a stream, the status a
numeric code stands for), `code`, `type`, `param` and the message, and returns the
matching exception. `error_from_http()` feeds it an HTTP error reply; `error_for_code()`
feeds it a `response.failed` or `error` event. Keeping both on one path means a context
overflow, say, reads the same whether the gateway refused the request or failed mid-stream.

Real gateways disagree on the shape (the README's Gateways section), so the
reading goes from the most reliable clue to the least:

1. explicit codes and types (OpenAI `model_not_found`, Azure `DeploymentNotFound`, LiteLLM
   `no_db_connection`, one-api/new-api `insufficient_user_quota`, ...);
2. the status: 401/403 is the key, 429 is slow down, 402 is money;
3. well-known message patterns, because LiteLLM sends `code: "400"` for everything and puts
   the real class in the text ("litellm.ContextWindowExceededError: ...");
4. the status again, as a last resort (404 not found, 5xx unavailable, 4xx bad request).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import (
    AuthenticationError,
    BadRequestError,
    ContentRefusedError,
    ContextTooLongError,
    GatewayError,
    GatewayTimeoutError,
    ModelNotFoundError,
    NotFoundError,
    PreviousResponseNotFoundError,
    QuotaExhaustedError,
    RateLimitedError,
    ResponseFailedError,
    UnavailableError,
    UnsupportedParameterError,
    parse_retry_after,
)

__all__ = ["app_param", "classify", "error_for_code", "error_from_http", "normalise_code"]

# Codes (and a few types) compared in lower case.
_QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "insufficient_user_quota",  # new-api
        "pre_consume_token_quota_failed",  # new-api
        "quota_exceeded",
    }
)
_PREVIOUS_CODES = frozenset({"previous_response_not_found"})
_MODEL_CODES = frozenset(
    {"model_not_found", "deploymentnotfound", "model_not_supported", "model_not_available"}
)
_CONTEXT_CODES = frozenset({"context_length_exceeded", "context_window_exceeded"})
_CONTENT_CODES = frozenset(
    {
        "content_filter",  # Azure
        "content_policy_violation",
        "responsibleaipolicyviolation",  # Azure's innererror
        "invalid_prompt",  # OpenAI: "your prompt was flagged as potentially violating..."
        "image_content_policy_violation",
        "sensitive_words_detected",  # one-api / new-api
    }
)
_UNSUPPORTED_CODES = frozenset({"unknown_parameter", "unsupported_parameter", "unsupported_value"})
_RATE_CODES = frozenset({"rate_limit_exceeded", "too_many_requests", "rate_limit_error"})
_AUTH_CODES = frozenset(
    {
        "invalid_api_key",
        "no_db_connection",  # LiteLLM without a database, for any wrong key
        "authentication_error",
        "invalid_authentication",
        "unauthorized",
    }
)

# Message fragments, matched in lower case, checked in this order.
_MODEL_PHRASES = (
    "invalid model name passed in model=",  # LiteLLM
    "no available channel for model",  # new-api
    "无可用渠道",  # one-api / new-api: "no channel available"
    "does not exist or you do not have access to it",  # OpenAI
    "the api deployment for this resource does not exist",  # Azure
    "model not found",
)
_CONTEXT_PHRASES = (
    "contextwindowexceedederror",  # LiteLLM's class name
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "input is too long",
)
_CONTENT_PHRASES = (
    "contentpolicyviolationerror",  # LiteLLM's class name
    "content management policy",  # Azure
    "content policy",
    "content_policy",
    "flagged as potentially violating",
)
_UNSUPPORTED_PHRASES = (
    "unsupportedparamserror",  # LiteLLM's class name
    # A model that reads no files: OpenAI-style "File inputs are not supported by model
    # 'x'", the chat form "file is only supported by certain models", and a relay's list
    # of the part types it takes ("Invalid value: file. Supported values are: 'text', ...").
    "file inputs are not supported",
    "file is only supported by certain models",
    "invalid value: file.",
    "invalid value: 'input_file'",
    "invalid value: 'file'",
    "unsupported params error",
    "does not support parameters",
    "unrecognized request argument",  # Azure
    "unsupported parameter",
    "unknown parameter",
)
_AUTH_PHRASES = (
    "no connected db",  # LiteLLM without a database
    "authentication error",
    "authenticationerror",
    "invalid api key",
    "incorrect api key",
    "无效的令牌",  # one-api / new-api: "invalid token"
)
_RATE_PHRASES = ("ratelimiterror", "rate limit")
_QUOTA_PHRASES = ("insufficient quota", "额度不足")

# Where gateways name the refused parameter inside the message.
_PARAM_IN_MESSAGE = (
    re.compile(r"does not support parameters:\s*\[([^\]]*)\]", re.IGNORECASE),  # LiteLLM
    re.compile(r"unrecognized request arguments? supplied:\s*([\w.\[\], ]+)", re.IGNORECASE),
    re.compile(r"(?:unsupported|unknown) (?:parameter|value):\s*'([^']+)'", re.IGNORECASE),
)
# A refusal that is about a file part: its param or words name the part or its data.
_FILE_REFUSAL = re.compile(
    r"input_file|file_data|\bfile inputs?\b|\bfile is only supported\b"
    r"|invalid value: '?file\b|\.file\b|\bcontent\[\d+\]\.file",
    re.IGNORECASE,
)
_STATUS_CODE = re.compile(r"[1-5]\d\d")
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
HTML_TEXT_LIMIT = 200


def classify(
    *,
    status: int | None = None,
    code: object = None,
    error_type: object = None,
    param: object = None,
    message: object = None,
    inner_code: object = None,
    retry_after: float | None = None,
    in_stream: bool = False,
    secret: str | None = None,
) -> GatewayError:
    """Return the exception for one complaint of the gateway.

    `status` is the HTTP status, or None inside a stream, where a code such as "429" or
    500 stands in for it. `inner_code` is Azure's `innererror.code`. Every text is kept
    (redacted with `secret`) on the exception for staff.
    """
    code_text = normalise_code(code)
    type_text = normalise_code(error_type)
    param_text = normalise_code(param)
    message_text = message if isinstance(message, str) and message else ""
    if status is None and code_text and _STATUS_CODE.fullmatch(code_text):
        status = int(code_text)
    kind = _kind(
        status=status,
        codes={text.lower() for text in (code_text, type_text, normalise_code(inner_code)) if text},
        param=(param_text or "").lower(),
        message=message_text.lower(),
        in_stream=in_stream,
    )
    kwargs: dict[str, Any] = {
        "status_code": None if in_stream else status,
        "code": code_text,
        "param": param_text,
        "error_type": type_text,
        "gateway_message": message_text,
        "in_stream": in_stream,
        "secret": secret,
    }
    detail = message_text or (f"HTTP {status}" if status else "The model service failed.")
    if kind is RateLimitedError:
        return RateLimitedError(detail, retry_after=retry_after, **kwargs)
    if kind is UnsupportedParameterError:
        return UnsupportedParameterError(
            detail, unsupported_param=app_param(param_text, message_text), **kwargs
        )
    return kind(detail, **kwargs)


def _kind(
    *, status: int | None, codes: set[str], param: str, message: str, in_stream: bool
) -> type[GatewayError]:
    """Return the exception class; the order of the checks is the order of trust."""
    by_code = (
        (_QUOTA_CODES, QuotaExhaustedError),
        (_PREVIOUS_CODES, PreviousResponseNotFoundError),
        (_MODEL_CODES, ModelNotFoundError),
        (_CONTEXT_CODES, ContextTooLongError),
        (_CONTENT_CODES, ContentRefusedError),
        (_UNSUPPORTED_CODES, UnsupportedParameterError),
        (_RATE_CODES, RateLimitedError),
        (_AUTH_CODES, AuthenticationError),
    )
    for known, kind in by_code:
        if codes & known:
            return kind
    if status in (401, 403):
        return AuthenticationError
    if status == 402:
        return QuotaExhaustedError
    if status == 429:
        return QuotaExhaustedError if _mentions(message, _QUOTA_PHRASES) else RateLimitedError
    if param == "previous_response_id" and "not found" in message:
        return PreviousResponseNotFoundError
    by_message = (
        (_MODEL_PHRASES, ModelNotFoundError),
        (_CONTEXT_PHRASES, ContextTooLongError),
        (_CONTENT_PHRASES, ContentRefusedError),
        (_UNSUPPORTED_PHRASES, UnsupportedParameterError),
        (_AUTH_PHRASES, AuthenticationError),
        (_QUOTA_PHRASES, QuotaExhaustedError),
        (_RATE_PHRASES, RateLimitedError),
    )
    for phrases, kind in by_message:
        if _mentions(message, phrases):
            return kind
    return _kind_by_status(status, in_stream)


def _kind_by_status(status: int | None, in_stream: bool) -> type[GatewayError]:
    if status == 404:
        return NotFoundError
    if status in (408, 504):
        return GatewayTimeoutError
    if status is not None and status >= 500:
        return UnavailableError
    if status is not None and status >= 400:
        return BadRequestError
    return ResponseFailedError if in_stream or status is None else BadRequestError


def _mentions(message: str, phrases: tuple[str, ...]) -> bool:
    return any(phrase in message for phrase in phrases)


def app_param(param: str | None, message: str) -> str | None:
    """Return the request body key the app should drop, from the gateway's param or words.

    LiteLLM's ['reasoning_effort'] and OpenAI's "reasoning.effort" both mean the app's
    `reasoning`; a refused web_search tool means `tools.web_search`; a refused file part
    (`input[0].content[1]` with words about files) means `input_file`, which the app
    sends again as text. None when unclear.
    """
    if _FILE_REFUSAL.search(f"{param or ''} {message}"):
        return "input_file"
    candidates = [param] if param else []
    for pattern in _PARAM_IN_MESSAGE:
        if match := pattern.search(message):
            candidates += match[1].split(",")
    found = next((name for name in map(_app_param_name, candidates) if name is not None), None)
    if found in (None, "tools") and "web_search" in message.lower():
        return "tools.web_search"
    return found


def _app_param_name(raw: str) -> str | None:
    words = raw.strip().strip("'\"` ").lower().split()
    name = words[0].rstrip(".'\"`") if words else ""
    if "web_search" in name:
        return "tools.web_search"
    if "summary" in name and name.startswith(("reasoning", "summary", "generate_summary")):
        return "reasoning.summary"
    if name.startswith(("reasoning", "effort")):
        return "reasoning"
    if name.startswith("stream_options") or name == "include_obfuscation":
        return "stream_options"
    if name.startswith("include"):
        return "include"
    if name.startswith("tools") or name in ("tool_choice", "parallel_tool_calls", "functions"):
        return "tools"
    if name in ("max_output_tokens", "max_tokens", "max_completion_tokens"):
        return "max_output_tokens"
    if name in ("store", "instructions"):
        return name
    return None


def normalise_code(value: object) -> str | None:
    """Return a code as text: numbers become strings ("400"), anything else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) and value else None


def error_for_code(
    code: object,
    message: str,
    *,
    param: object = None,
    error_type: object = None,
    status: int | None = None,
    secret: str | None = None,
) -> GatewayError:
    """Return the exception for a failure reported inside a stream."""
    return classify(
        status=status,
        code=code,
        error_type=error_type,
        param=param,
        message=message,
        in_stream=True,
        secret=secret,
    )


def error_from_http(
    status_code: int, body: bytes, headers: Mapping[str, str], *, secret: str | None = None
) -> GatewayError:
    """Return the exception for a non-2xx gateway reply (status, raw body and headers)."""
    if secret:
        body = body.replace(secret.encode(), b"[redacted]")
    fields = _error_fields(body, headers.get("content-type", ""))
    inner = fields.get("innererror")
    return classify(
        status=status_code,
        code=fields.get("code"),
        error_type=fields.get("type"),
        param=fields.get("param"),
        message=_message(fields) or f"HTTP {status_code}",
        inner_code=inner.get("code") if isinstance(inner, dict) else None,
        retry_after=parse_retry_after(headers) if status_code == 429 else None,
        secret=secret,
    )


def _message(fields: Mapping[str, Any]) -> str:
    for key in ("message", "detail", "msg"):
        value = fields.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _error_fields(body: bytes, content_type: str) -> dict[str, Any]:
    """Return the `error` object of an OpenAI-style error body, tolerating anything else."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        text = body.decode("utf-8", "replace").strip()
        if "html" in content_type.lower() or text.startswith("<"):
            text = _html_text(text)
        return {"message": text[:HTML_TEXT_LIMIT]} if text else {}
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict):
            return inner
        if isinstance(inner, str):
            return {**parsed, "message": inner}
        return parsed
    return {}


def _html_text(page: str) -> str:
    """Return the words of an HTML error page (a proxy's 502), never its markup."""
    return " ".join(html.unescape(_TAG.sub(" ", page)).split())[:HTML_TEXT_LIMIT]
