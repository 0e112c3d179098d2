"""Turn a plan into the exact event sequence of one response, then apply a stream fault.

The order and fields follow reference §1.2: `response.created`, `response.in_progress`,
then per output item `output_item.added` → its part/delta/done events →
`output_item.done`, and a terminal event carrying the full response with `usage`.
Each step records how many tokens of generation time precede it; the writer turns that
into real delays at the requested pace. `max_output_tokens` is a real budget: when the
answer does not fit, it is cut and the response ends `incomplete`.
"""

from __future__ import annotations

import random
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

from .params import Params
from .plan import PlannedItem, PlannedMessage, PlannedSearch
from .reasoning import PlannedReasoning
from .responses import response_object, usage_object
from .tokens import count_tokens, tokenize
from .tools import ToolCall

__all__ = ["TERMINAL_TYPES", "Step", "Timeline", "build_timeline"]

TERMINAL_TYPES = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "error"}
)
THINKING_SPEEDUP = 4  # hidden reasoning runs this many times faster than visible text
SEARCH_COST = 8  # tokens' worth of time per web search phase
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the stream sends: an event, raw bytes, or a hang (send nothing, ever)."""

    event: dict[str, Any] | None = None
    cost: float = 0.0  # tokens of generation time before this step
    raw: bytes | None = None
    hang: bool = False
    token: bool = False  # raw bytes that carry a generated token (chat completion chunks)

    @property
    def is_token(self) -> bool:
        """Return whether this step sends a piece of generated text (it waits for the model)."""
        return self.token or (self.event is not None and self.event["type"].endswith(".delta"))

    @property
    def is_terminal(self) -> bool:
        return self.event is not None and self.event["type"] in TERMINAL_TYPES


@dataclass(frozen=True, slots=True)
class Timeline:
    """The whole script of one response."""

    response_id: str
    steps: list[Step]
    final: dict[str, Any] | None  # None when the stream never ends properly

    @property
    def total_cost(self) -> float:
        return sum(step.cost for step in self.steps)


def build_timeline(
    params: Params,
    plan: list[PlannedItem],
    *,
    created_at: int,
    input_tokens: int,
    cached_tokens: int,
    stream_fault: str | None = None,
    response_id: str | None = None,
) -> Timeline:
    """Return the steps of a response for `plan`, with `stream_fault` applied if given."""
    budget = params.max_output_tokens
    if stream_fault == "incomplete":
        budget = min(budget or 10**9, _half_of_output(plan))
    builder = _Builder(params, response_id or _new_id("resp_"), created_at, budget)
    builder.start()
    for item in plan:
        builder.add(item)
    final = builder.finish(input_tokens=input_tokens, cached_tokens=cached_tokens)
    steps = builder.steps
    if stream_fault in ("failed", "error", "error-flat", "cut", "malformed", "stall"):
        steps, final = _apply_fault(builder, stream_fault, final)
    _number(steps)
    return Timeline(builder.response_id, steps, final)


class _Builder:
    """Accumulates the steps and output items of one response."""

    def __init__(
        self, params: Params, response_id: str, created_at: int, budget: int | None
    ) -> None:
        self.params = params
        self.response_id = response_id
        self.created_at = created_at
        self.budget = budget
        self.steps: list[Step] = []
        self.output: list[dict[str, Any]] = []
        self.output_tokens = 0
        self.reasoning_tokens = 0
        self.truncated = False
        self._pending_cost = 0.0
        self._rng = random.Random(response_id)

    def response(self, status: str, **fields: Any) -> dict[str, Any]:
        return response_object(
            self.params,
            response_id=self.response_id,
            created_at=self.created_at,
            status=status,
            **fields,
        )

    def event(self, event_type: str, **fields: Any) -> dict[str, Any]:
        # Renumbered at the end, once faults have added or removed events.
        return {"type": event_type, "sequence_number": 0, **fields}

    def emit(self, event_type: str, cost: float = 0.0, **fields: Any) -> None:
        self.steps.append(Step(self.event(event_type, **fields), cost + self._pending_cost))
        self._pending_cost = 0.0

    def delta(self, event_type: str, delta: str, **position: Any) -> None:
        """Emit one token; deltas are padded with obfuscation unless the request opted out."""
        fields: dict[str, Any] = {**position, "delta": delta}
        if event_type == "response.output_text.delta":
            fields["logprobs"] = []
        if self.params.include_obfuscation:
            padding = max(2, 16 - len(delta))
            fields["obfuscation"] = "".join(
                self._rng.choices(string.ascii_letters + string.digits, k=padding)
            )
        self.emit(event_type, cost=1, **fields)

    def spend(self, tokens: int) -> int:
        """Return how many of `tokens` output tokens still fit in the budget."""
        allowed = tokens
        if self.budget is not None:
            allowed = max(0, min(tokens, self.budget - self.output_tokens))
        self.output_tokens += allowed
        if allowed < tokens:
            self.truncated = True
        return allowed

    def start(self) -> None:
        self.emit("response.created", response=self.response("in_progress"))
        self.emit("response.in_progress", response=self.response("in_progress"))

    def add(self, item: PlannedItem) -> None:
        if self.truncated:
            return
        if isinstance(item, PlannedReasoning):
            self.reasoning(item)
        elif isinstance(item, PlannedSearch):
            self.web_search(item)
        elif isinstance(item, ToolCall):
            self.function_call(item)
        else:
            self.message(item)

    def finish(self, *, input_tokens: int, cached_tokens: int) -> dict[str, Any]:
        usage = usage_object(
            input_tokens=input_tokens,
            cached_tokens=cached_tokens,
            output_tokens=self.output_tokens,
            reasoning_tokens=self.reasoning_tokens,
        )
        if self.truncated:
            final = self.response(
                "incomplete", output=self.output, usage=usage, incomplete_reason="max_output_tokens"
            )
            self.emit("response.incomplete", response=final)
        else:
            final = self.response(
                "completed", output=self.output, usage=usage, completed_at=int(time.time())
            )
            self.emit("response.completed", response=final)
        return final

    def reasoning(self, plan: PlannedReasoning) -> None:
        index = len(self.output)
        item_id = _new_id("rs_")
        added: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
        if plan.raw_text is not None:
            added["content"] = []
        self.emit("response.output_item.added", output_index=index, item=added)
        allowed = self.spend(plan.reasoning_tokens)
        self.reasoning_tokens += allowed
        done: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
        if plan.raw_text is not None:
            text = self.stream_reasoning_text(item_id, index, plan.raw_text, allowed)
            done["content"] = [{"type": "reasoning_text", "text": text}]
        else:
            self._pending_cost += allowed / THINKING_SPEEDUP
        if not self.truncated:
            done["summary"] = [
                {"type": "summary_text", "text": self.stream_summary(item_id, index, number, text)}
                for number, text in enumerate(plan.summary)
            ]
            if plan.encrypted_content is not None:
                done["encrypted_content"] = plan.encrypted_content
        done["status"] = "incomplete" if self.truncated else "completed"
        self.emit("response.output_item.done", output_index=index, item=done)
        self.output.append(done)

    def stream_reasoning_text(self, item_id: str, index: int, text: str, allowed: int) -> str:
        position = {"item_id": item_id, "output_index": index, "content_index": 0}
        self.emit(
            "response.content_part.added", **position, part={"type": "reasoning_text", "text": ""}
        )
        streamed = "".join(tokenize(text)[:allowed])
        for token in tokenize(streamed):
            self.delta("response.reasoning_text.delta", token, **position)
        self.emit("response.reasoning_text.done", **position, text=streamed)
        self.emit(
            "response.content_part.done",
            **position,
            part={"type": "reasoning_text", "text": streamed},
        )
        return streamed

    def stream_summary(self, item_id: str, index: int, number: int, text: str) -> str:
        position = {"item_id": item_id, "output_index": index, "summary_index": number}
        empty = {"type": "summary_text", "text": ""}
        self.emit("response.reasoning_summary_part.added", **position, part=empty)
        for token in tokenize(text):
            self.delta("response.reasoning_summary_text.delta", token, **position)
        self.emit("response.reasoning_summary_text.done", **position, text=text)
        self.emit(
            "response.reasoning_summary_part.done",
            **position,
            part={"type": "summary_text", "text": text},
        )
        return text

    def web_search(self, plan: PlannedSearch) -> None:
        index = len(self.output)
        item_id = _new_id("ws_")
        position = {"item_id": item_id, "output_index": index}
        added = {
            "id": item_id,
            "type": "web_search_call",
            "status": "in_progress",
            "action": {"type": "search"},
        }
        self.emit("response.output_item.added", output_index=index, item=added)
        self.emit("response.web_search_call.in_progress", **position)
        self.emit("response.web_search_call.searching", cost=SEARCH_COST, **position)
        self.emit("response.web_search_call.completed", cost=SEARCH_COST, **position)
        action: dict[str, Any] = {"type": "search", "query": plan.query}
        if "web_search_call.action.sources" in self.params.include:
            action["sources"] = [{"type": "url", "url": url} for url in plan.urls]
        done = {"id": item_id, "type": "web_search_call", "status": "completed", "action": action}
        self.emit("response.output_item.done", output_index=index, item=done)
        self.output.append(done)

    def function_call(self, call: ToolCall) -> None:
        index = len(self.output)
        item_id = _new_id("fc_")
        call_id = "call_" + "".join(self._rng.choices(string.ascii_letters + string.digits, k=24))
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": call_id,
            "name": call.name,
        }
        self.emit("response.output_item.added", output_index=index, item=item)
        tokens = tokenize(call.arguments)
        allowed = self.spend(len(tokens))
        position = {"item_id": item_id, "output_index": index}
        for token in tokens[:allowed]:
            self.delta("response.function_call_arguments.delta", token, **position)
        arguments = "".join(tokens[:allowed])
        self.emit(
            "response.function_call_arguments.done", **position, arguments=arguments, name=call.name
        )
        status = "incomplete" if allowed < len(tokens) else "completed"
        done = {**item, "status": status, "arguments": arguments}
        self.emit("response.output_item.done", output_index=index, item=done)
        self.output.append(done)

    def message(self, plan: PlannedMessage) -> None:
        tokens = tokenize(plan.text)
        allowed = self.spend(len(tokens))
        if tokens and not allowed:
            return  # the budget ran out before the answer began (e.g. spent on reasoning)
        index = len(self.output)
        item_id = _new_id("msg_")
        added = {
            "id": item_id,
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        }
        self.emit("response.output_item.added", output_index=index, item=added)
        position = {"item_id": item_id, "output_index": index, "content_index": 0}
        if plan.refusal:
            self.emit(
                "response.content_part.added", **position, part={"type": "refusal", "refusal": ""}
            )
        else:
            empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            self.emit("response.content_part.added", **position, part=empty_part)
        text = ""
        annotations: list[dict[str, Any]] = []
        pending = list(plan.citations)
        for token in tokens[:allowed]:
            text += token
            kind = "response.refusal.delta" if plan.refusal else "response.output_text.delta"
            self.delta(kind, token, **position)
            while pending and pending[0].end_index <= len(text):
                annotation = pending.pop(0).to_dict()
                self.emit(
                    "response.output_text.annotation.added",
                    **position,
                    annotation_index=len(annotations),
                    annotation=annotation,
                )
                annotations.append(annotation)
        if plan.refusal:
            part: dict[str, Any] = {"type": "refusal", "refusal": text}
            self.emit("response.refusal.done", **position, refusal=text)
        else:
            part = {"type": "output_text", "annotations": annotations, "logprobs": [], "text": text}
            self.emit("response.output_text.done", **position, text=text, logprobs=[])
        self.emit("response.content_part.done", **position, part=part)
        status = "incomplete" if allowed < len(tokens) else "completed"
        done = {
            "id": item_id,
            "type": "message",
            "status": status,
            "content": [part],
            "role": "assistant",
        }
        self.emit("response.output_item.done", output_index=index, item=done)
        self.output.append(done)


def _apply_fault(
    builder: _Builder, fault: str, final: dict[str, Any]
) -> tuple[list[Step], dict[str, Any] | None]:
    """Return the steps and final response of the stream with `fault` applied."""
    steps = builder.steps
    head = steps[: _cut_point(steps)]
    if fault == "malformed":
        broken = (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",\n\n'
        )
        return [*head, Step(raw=broken, cost=1), *steps[len(head) :]], final
    if fault == "cut":
        return head, None
    if fault == "stall":
        return [*head, Step(hang=True)], None
    if fault == "error-flat":
        flat = builder.event("error", code="server_error", message=SERVER_ERROR, param=None)
        failed = builder.response("failed", error={"code": "server_error", "message": SERVER_ERROR})
        return [*head, Step(flat, cost=1)], failed
    if fault == "error":
        # As captured from real traffic: the details nested under "error", then response.failed.
        details = {
            "type": "too_many_requests",
            "code": "too_many_requests",
            "message": "Too Many Requests",
            "param": None,
        }
        failed = builder.response(
            "failed", error={"code": "rate_limit_exceeded", "message": "Too Many Requests"}
        )
        return [
            *head,
            Step(builder.event("error", error=details), cost=1),
            Step(builder.event("response.failed", response=failed)),
        ], failed
    failed = builder.response("failed", error={"code": "server_error", "message": SERVER_ERROR})
    return [*head, Step(builder.event("response.failed", response=failed), cost=1)], failed


def _cut_point(steps: list[Step]) -> int:
    """Return where a fault strikes: after the third text delta, or right after in_progress."""
    deltas = [
        index
        for index, step in enumerate(steps)
        if step.event is not None and step.event["type"] == "response.output_text.delta"
    ]
    return deltas[min(2, len(deltas) - 1)] + 1 if deltas else 2


def _half_of_output(plan: list[PlannedItem]) -> int:
    """Return a budget that lets reasoning finish but stops the answer halfway."""
    reasoning = sum(item.reasoning_tokens for item in plan if isinstance(item, PlannedReasoning))
    visible = sum(count_tokens(item.text) for item in plan if isinstance(item, PlannedMessage))
    visible += sum(count_tokens(item.arguments) for item in plan if isinstance(item, ToolCall))
    return reasoning + max(1, visible // 2)


def _number(steps: list[Step]) -> None:
    """Give the events their sequence numbers, 0 for response.created and +1 each."""
    events = (step.event for step in steps if step.event is not None)
    for number, event in enumerate(events):
        event["sequence_number"] = number


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(24)
