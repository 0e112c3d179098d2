"""The stateless-relay mode: what a gateway that bridges to Chat Completions does to a reply.

Modelled on LiteLLM's proxy without its database in front of a chat backend (measured in
tests/gateways/test_litellm_protocol.py):
- `previous_response_id` is ignored: the model sees only the new input, and an id that
  never existed is no error;
- `response.created` carries no `previous_response_id`; the final response echoes a
  different one (the backend's `chatcmpl-…` id) when one was sent;
- response ids are long opaque blobs (~430 characters), not `resp_` and hex;
- nothing is stored, so `GET /v1/responses/{id}` does not find them;
- the stream has `data:` lines only (an `event:` line just for `response.failed`), an
  extra top-level `model` on every event, and a trailing `data: [DONE]`;
- HTTP errors carry `code` as a string of the status (`"400"`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from .http import ApiError
from .timeline import Step, Timeline

__all__ = ["echoed_previous_id", "relay_error", "relay_response_id", "relay_timeline"]

ID_BYTES = 318  # base64 of this many bytes, after "resp_", is 429 characters like LiteLLM's
DONE = b"data: [DONE]\n\n"


def relay_response_id() -> str:
    """Return a response id the way the relay writes them: an opaque blob of ~430 chars."""
    return "resp_" + base64.urlsafe_b64encode(secrets.token_bytes(ID_BYTES)).decode().rstrip("=")


def echoed_previous_id(sent: str | None) -> str | None:
    """Return the `previous_response_id` the relay reports back: never the one sent."""
    if sent is None:
        return None
    return "chatcmpl-" + hashlib.sha256(sent.encode()).hexdigest()[:29]


def relay_timeline(
    timeline: Timeline, *, alias: str, previous_response_id: str | None, late: bool = False
) -> Timeline:
    """Return `timeline` as the relay sends it; `alias` is the model name the client used.

    `late`: without `response.created` and `response.in_progress`, as relays that start
    with the first delta do.
    """
    echoed = echoed_previous_id(previous_response_id)
    steps = []
    for step in timeline.steps:
        if step.event is None:
            steps.append(step)
            continue
        if late and step.event["type"] in ("response.created", "response.in_progress"):
            continue
        event = {**step.event, "model": alias}
        if "response" in event:
            event["response"] = _relayed(event["response"], echoed if step.is_terminal else None)
        event_line = "event: response.failed\n" if event["type"] == "response.failed" else ""
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        raw = f"{event_line}data: {data}\n\n".encode()
        steps.append(Step(raw=raw, cost=step.cost, token=step.is_token))
    if timeline.steps and timeline.steps[-1].is_terminal:
        steps.append(Step(raw=DONE))
    final = _relayed(timeline.final, echoed) if timeline.final is not None else None
    return Timeline(timeline.response_id, steps, final)


def relay_error(error: ApiError) -> ApiError:
    """Return `error` with its `code` replaced by the HTTP status as a string."""
    if error.raw_body is not None:
        return error
    return ApiError(
        error.status,
        error.message,
        error_type=error.error_type,
        param=None,
        code=str(error.status),
        headers=error.headers,
    )


def _relayed(response: dict[str, Any], previous_response_id: str | None) -> dict[str, Any]:
    return {**response, "previous_response_id": previous_response_id}
