"""Turn a plan into a Chat Completions answer: `chat.completion.chunk` events or one object.

The stream follows OpenAI's: `data:` lines without `event:` lines, a first chunk with the
role, one chunk per token (`content`, `refusal`, `reasoning_content` or a `tool_calls`
delta), a chunk with the `finish_reason`, a last chunk with `usage` and no choices when
`stream_options.include_usage` is set, then `data: [DONE]`. A budget (`max_tokens`) cuts
the answer and ends it with `finish_reason: "length"`.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from .chat_params import ChatParams
from .plan import PlannedItem, PlannedMessage, PlannedSearch
from .reasoning import PlannedReasoning
from .timeline import Step, Timeline
from .tokens import count_tokens, tokenize
from .tools import ToolCall

__all__ = ["CHAT_STREAM_FAULTS", "build_chat_timeline"]

CHAT_STREAM_FAULTS = ("failed", "error", "error-flat", "incomplete", "cut", "malformed", "stall")
DONE = b"data: [DONE]\n\n"
FAULT_AFTER = 3  # content chunks sent before a stream fault strikes
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def build_chat_timeline(
    chat: ChatParams,
    plan: list[PlannedItem],
    *,
    created_at: int,
    input_tokens: int,
    stream_fault: str | None = None,
) -> Timeline:
    """Return the chunks of one answer for `plan`; `final` is the non-streamed object."""
    budget = chat.params.max_output_tokens
    if stream_fault == "incomplete":
        budget = min(budget or 10**9, _half_of_output(plan))
    builder = _ChunkBuilder(chat, created_at, budget)
    for item in plan:
        builder.add(item)
    builder.finish(input_tokens)
    steps = builder.steps
    final: dict[str, Any] | None = builder.completion(input_tokens)
    if stream_fault in ("failed", "error", "error-flat", "cut", "malformed", "stall"):
        steps, final = _apply_fault(steps, stream_fault)
    return Timeline(builder.completion_id, steps, final)


class _ChunkBuilder:
    """Accumulates the chunks, the text and the calls of one answer."""

    def __init__(self, chat: ChatParams, created_at: int, budget: int | None) -> None:
        self.chat = chat
        self.model = chat.params.model
        self.completion_id = "chatcmpl-" + _random_text(29)
        self.created_at = created_at
        self.budget = budget
        self.fingerprint = "fp_" + secrets.token_hex(5)
        self.steps: list[Step] = []
        self.content = ""
        self.refusal: str | None = None
        self.reasoning = ""
        self.tool_calls: list[dict[str, Any]] = []
        self.output_tokens = 0
        self.reasoning_tokens = 0
        self.truncated = False
        self._pending_cost = 0.0
        self.chunk({"role": "assistant", "content": "", "refusal": None})

    def chunk(
        self, delta: dict[str, Any], *, cost: float = 0, finish_reason: str | None = None
    ) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        self.send(self.envelope(choices=[choice]), cost=cost, token=cost > 0)

    def envelope(self, **fields: Any) -> dict[str, Any]:
        envelope = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created_at,
            "model": self.model.snapshot,
            "service_tier": "default",
            "system_fingerprint": self.fingerprint,
            **fields,
        }
        if self.chat.include_usage:
            envelope.setdefault("usage", None)
        return envelope

    def send(self, payload: dict[str, Any], *, cost: float = 0, token: bool = False) -> None:
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        raw = f"data: {data}\n\n".encode()
        self.steps.append(Step(raw=raw, cost=cost + self._pending_cost, token=token))
        self._pending_cost = 0.0

    def spend(self, tokens: int) -> int:
        """Return how many of `tokens` output tokens still fit in the budget."""
        allowed = tokens
        if self.budget is not None:
            allowed = max(0, min(tokens, self.budget - self.output_tokens))
        self.output_tokens += allowed
        if allowed < tokens:
            self.truncated = True
        return allowed

    def add(self, item: PlannedItem) -> None:
        if self.truncated or isinstance(item, PlannedSearch):
            return  # chat completions have no hosted web search
        if isinstance(item, PlannedReasoning):
            self.think(item)
        elif isinstance(item, ToolCall):
            self.call(item)
        else:
            self.say(item)

    def think(self, plan: PlannedReasoning) -> None:
        text = plan.raw_text or "\n\n".join(plan.summary)
        allowed = self.spend(plan.reasoning_tokens)
        self.reasoning_tokens += allowed
        shown = tokenize(text)[: min(allowed, count_tokens(text))]
        self._pending_cost += max(0, allowed - len(shown)) / 4  # hidden thinking is faster
        for token in shown:
            self.reasoning += token
            self.chunk({"reasoning_content": token}, cost=1)

    def call(self, call: ToolCall) -> None:
        index = len(self.tool_calls)
        call_id = "call_" + _random_text(24)
        function = {"name": call.name, "arguments": ""}
        opening = {"index": index, "id": call_id, "type": "function", "function": function}
        self.chunk({"tool_calls": [opening]})
        tokens = tokenize(call.arguments)
        allowed = self.spend(len(tokens))
        for token in tokens[:allowed]:
            self.chunk({"tool_calls": [{"index": index, "function": {"arguments": token}}]}, cost=1)
        arguments = "".join(tokens[:allowed])
        function = {"name": call.name, "arguments": arguments}
        self.tool_calls.append({"id": call_id, "type": "function", "function": function})

    def say(self, plan: PlannedMessage) -> None:
        tokens = tokenize(plan.text)
        allowed = self.spend(len(tokens))
        key = "refusal" if plan.refusal else "content"
        for token in tokens[:allowed]:
            if plan.refusal:
                self.refusal = (self.refusal or "") + token
            else:
                self.content += token
            self.chunk({key: token}, cost=1)

    @property
    def finish_reason(self) -> str:
        if self.truncated:
            return "length"
        return "tool_calls" if self.tool_calls else "stop"

    def usage(self, input_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": input_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def finish(self, input_tokens: int) -> None:
        self.chunk({}, finish_reason=self.finish_reason)
        if self.chat.include_usage:
            self.send(self.envelope(choices=[], usage=self.usage(input_tokens)))
        self.steps.append(Step(raw=DONE))

    def completion(self, input_tokens: int) -> dict[str, Any]:
        """Return the whole answer as one `chat.completion` object."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.content or None,
            "refusal": self.refusal,
            "annotations": [],
        }
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created_at,
            "model": self.model.snapshot,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage(input_tokens),
            "service_tier": "default",
            "system_fingerprint": self.fingerprint,
        }


def _apply_fault(steps: list[Step], fault: str) -> tuple[list[Step], dict[str, Any] | None]:
    """Return the chunks with `fault` applied, and the non-streamed reply (None: a 500)."""
    tokens = [index for index, step in enumerate(steps) if step.token]
    cut = tokens[min(FAULT_AFTER, len(tokens)) - 1] + 1 if tokens else 1
    head = steps[:cut]
    if fault == "malformed":
        return [*head, Step(raw=b'data: {"id":"chatcmpl-broken",\n\n', cost=1), *steps[cut:]], None
    if fault == "cut":
        return head, None
    if fault == "stall":
        return [*head, Step(hang=True)], None
    # OpenAI reports a failure after the stream began as an `error` object in a data line.
    error = {"message": SERVER_ERROR, "type": "server_error", "param": None, "code": None}
    line = json.dumps({"error": error}, separators=(",", ":"))
    return [*head, Step(raw=f"data: {line}\n\n".encode(), cost=1)], None


def _half_of_output(plan: list[PlannedItem]) -> int:
    """Return a budget that lets reasoning finish but stops the answer halfway."""
    reasoning = sum(item.reasoning_tokens for item in plan if isinstance(item, PlannedReasoning))
    visible = sum(count_tokens(item.text) for item in plan if isinstance(item, PlannedMessage))
    visible += sum(count_tokens(item.arguments) for item in plan if isinstance(item, ToolCall))
    return reasoning + max(1, visible // 2)


def _random_text(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))
