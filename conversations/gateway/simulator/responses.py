"""Build the full `response` object exactly as real gateways send it (reference §1.3/§1.4).

Lifecycle events, non-streaming replies, `GET` and `cancel` all carry this object, so it
is built in one place: every field present, `usage` null until the end, integer
`created_at`, and the dated model snapshot rather than the alias that was sent.
"""

from __future__ import annotations

from typing import Any

from .params import Params

__all__ = ["response_object", "usage_object"]


def response_object(
    params: Params,
    *,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """Return a response object for `params` in the given state."""
    response: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": params.background,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": params.instructions,
        "max_output_tokens": params.max_output_tokens,
        "max_tool_calls": None,
        "model": params.model.snapshot,
        "output": output or [],
        "parallel_tool_calls": params.echo.get("parallel_tool_calls", True),
        "previous_response_id": params.previous_response_id,
        "prompt_cache_key": None,
        "reasoning": {"effort": params.effort, "summary": params.summary},
        "safety_identifier": None,
        # Real gateways say "auto" while working and name the actual tier at the end.
        "service_tier": "default" if status in ("completed", "incomplete") else "auto",
        "store": params.store,
        "temperature": params.echo.get("temperature", 1.0),
        "text": params.echo.get("text", {"format": {"type": "text"}, "verbosity": "medium"}),
        "tool_choice": params.tool_choice,
        "tools": params.tools,
        "top_logprobs": 0,
        "top_p": params.echo.get("top_p", 1.0),
        "truncation": params.echo.get("truncation", "disabled"),
        "usage": usage,
        "user": params.echo.get("user"),
        "metadata": params.metadata,
    }
    if completed_at is not None:
        response["completed_at"] = completed_at
    return response


def usage_object(
    *, input_tokens: int, cached_tokens: int, output_tokens: int, reasoning_tokens: int
) -> dict[str, Any]:
    """Return the `usage` object; reasoning tokens are counted inside output tokens."""
    return {
        "input_tokens": input_tokens,
        # cache_write_tokens is new (2026); the current SDK requires it, older captures lack it.
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }
