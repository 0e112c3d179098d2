"""What one turn will ask the gateway for, decided before the gateway is called.

A `TurnPlan` is plain data built from the database in one place (`records`), so the
generation never touches the ORM to decide what to send, and tests can read exactly
what a turn would request.

How earlier turns reach the model is the catalogue entry's context mode: continue
upstream with `previous_response_id`, or replay the branch as input items. Replayed
history is cut from its oldest turns to fit the model's context window (`fit_history`).
Optional request fields are sent only while the gateway has not rejected them for the
model (`ModelChoice.unsupported_params`); a rejection in this turn drops them too
(`TurnPlan.request(..., dropped=...)`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from conversations.gateway.request import Reasoning, ResponseRequest, WebSearchTool
from conversations.tools import get_tool, to_function_tool
from conversations.usage.ledger import estimate_tokens
from conversations.usage.quotas import Reservation

__all__ = [
    "DROPPABLE_PARAMS",
    "TurnOptions",
    "TurnPlan",
    "fit_history",
    "history_budget",
    "paired_tool_items",
]

SUMMARY_MODES = ("auto", "concise", "detailed")
# Request fields the app adds on its own and can leave out when a gateway rejects them,
# named as `UnsupportedParameterError.unsupported_param` names them.
DROPPABLE_PARAMS = frozenset(
    {
        "reasoning",
        "reasoning.summary",
        "include",
        "stream_options",
        "store",
        "tools",
        "tools.web_search",
        "max_output_tokens",
        "instructions",
    }
)
# What an image costs in the context window, roughly (a tiled 1024 px image is ~800).
IMAGE_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """The composer's per-message choices, as sent by the page (validated in `records`)."""

    effort: str = ""
    summary: str = ""
    web_search: bool = False
    attachment_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TurnPlan:
    user_id: int
    conversation_id: int
    answer_id: int
    model: str
    model_choice_id: int | None
    instructions: str
    # Send the branch every turn instead of `previous_response_id` (the model's context
    # mode is "replay", or "auto" found the gateway stateless).
    replay: bool
    # The branch's last answer to continue from; empty when the history is replayed.
    previous_id: str
    # Only the new user input, sent with previous_id.
    new_input: tuple[dict[str, Any], ...]
    # The whole branch as input items: built up front only when there is no previous_id;
    # otherwise `records.replay_history` builds it if the gateway forgot the chain.
    history: tuple[dict[str, Any], ...] | None = None
    # Context mode "auto": check that the gateway echoes the previous_response_id sent.
    detect_stateless: bool = False
    # Earlier turns `fit_history` left out of `history`.
    turns_left_out: int = 0
    context_window: int | None = None
    max_output_tokens: int | None = None
    reasoning_effort: str = ""
    reasoning_summary: str = ""
    reasoning_model: bool = False
    tools: tuple[str, ...] = ()
    web_search: bool = False
    # Request fields the gateway rejected for this model before: never sent.
    unsupported: frozenset[str] = frozenset()
    # Fields OpenAI documents that relays may refuse: sent only where known accepted.
    send_store: bool = False
    send_stream_options: bool = False
    # The catalogue marks the model unknown to the gateway: a success clears the mark.
    model_marked_unknown: bool = False
    # The conversation's owner is staff: the final bubble shows what the gateway said.
    owner_is_staff: bool = False
    needs_title: bool = False
    first_user_text: str = ""
    user_message_id: int | None = None
    notices: tuple[str, ...] = field(default=())
    # Tokens the history and instructions amount to, for estimates when usage is missing.
    input_estimate: int = 0
    reservation: Reservation | None = None

    def request(
        self, *, history: Sequence[dict] | None = None, dropped: Collection[str] = ()
    ) -> ResponseRequest:
        """Return the streaming request: continue from `previous_id`, or send `history`."""
        if history is None and self.previous_id:
            return self._request(self.new_input, previous_id=self.previous_id, dropped=dropped)
        items = history if history is not None else self.history or ()
        return self._request(items, dropped=dropped)

    def followup(
        self,
        outputs: Sequence[dict],
        *,
        previous_id: str,
        history: Sequence[dict] = (),
        dropped: Collection[str] = (),
    ) -> ResponseRequest:
        """Return the request that hands the model its function-call outputs.

        Continuing upstream, it continues from the response that asked for them;
        replaying, it sends everything so far followed by the outputs.
        """
        if previous_id:
            return self._request(outputs, previous_id=previous_id, dropped=dropped)
        return self._request([*history, *outputs], dropped=dropped)

    def _request(
        self, items: Sequence[dict], *, previous_id: str = "", dropped: Collection[str] = ()
    ) -> ResponseRequest:
        skip = self.unsupported | set(dropped)
        # Only a replaying turn keeps nothing upstream: a first turn continuing upstream
        # also sends its (one-message) history, and must be stored to be continued.
        replaying = self.replay
        reasoning = None
        include: tuple[str, ...] = ()
        if self.reasoning_model and "reasoning" not in skip:
            summary = self.reasoning_summary if "reasoning.summary" not in skip else ""
            reasoning = Reasoning(effort=self.reasoning_effort or None, summary=summary or None)
            if replaying and "include" not in skip:
                # Stateless turns must carry the model's reasoning forward themselves.
                include = ("reasoning.encrypted_content",)
        tools: list = []
        if "tools" not in skip:
            tools = [to_function_tool(get_tool(name)) for name in self.tools]
        if self.web_search and "tools.web_search" not in skip:
            tools.append(WebSearchTool())
        instructions = self.instructions or None
        if instructions and "instructions" in skip:
            # The gateway takes no `instructions` field: say them as the first message.
            items = [
                {"type": "message", "role": "system", "content": instructions},
                *items,
            ]
            instructions = None
        return ResponseRequest(
            model=self.model,
            input=list(items),
            instructions=instructions,
            previous_response_id=previous_id or None,
            store=False if replaying and self.send_store and "store" not in skip else None,
            reasoning=reasoning,
            include=include,
            max_output_tokens=(self.max_output_tokens if "max_output_tokens" not in skip else None),
            tools=tools,
            stream=True,
            stream_options=(
                # Obfuscation pads every delta to hide token lengths from network
                # observers; we are the only reader, so skip the extra bytes.
                {"include_obfuscation": False}
                if self.send_stream_options and "stream_options" not in skip
                else None
            ),
        )


def paired_tool_items(items: Sequence[dict]) -> list[dict]:
    """Return `items` without function calls that lack an output, or outputs without a call.

    The Responses API refuses a replay with either: a call the app never answered (the
    turn was stopped mid-tool) or an output whose question is missing.
    """
    calls = {item.get("call_id") for item in items if item.get("type") == "function_call"}
    outputs = {item.get("call_id") for item in items if item.get("type") == "function_call_output"}
    answered = calls & outputs
    return [
        item
        for item in items
        if item.get("type") not in ("function_call", "function_call_output")
        or item.get("call_id") in answered
    ]


def fit_history(items: Sequence[dict], *, budget: int | None) -> tuple[list[dict], int]:
    """Return the newest turns of `items` that fit in `budget` tokens, and how many were cut.

    A turn starts at each user message and holds everything up to the next one (the
    answer, its tool calls and their outputs), so a cut never separates a tool output
    from the call that asked for it. The last turn (the new question) is always kept.
    """
    turns: list[list[dict]] = []
    for item in items:
        if not turns or item.get("role") == "user":
            turns.append([])
        turns[-1].append(item)
    if budget is None or not turns:
        return list(items), 0
    kept: list[list[dict]] = []
    used = 0
    for turn in reversed(turns):
        cost = sum(item_tokens(item) for item in turn)
        if kept and used + cost > budget:
            break
        kept.append(turn)
        used += cost
    left_out = len(turns) - len(kept)
    return [item for turn in reversed(kept) for item in turn], left_out


def history_budget(
    context_window: int | None, instructions: str, max_output_tokens: int | None
) -> int | None:
    """Return the tokens replayed history may take: the window less instructions and output."""
    if not context_window:
        return None
    reserved = estimate_tokens(instructions) + (max_output_tokens or 0)
    return max(0, context_window - reserved)


def item_tokens(item: dict) -> int:
    """Return roughly what one input item costs in the context window."""
    content = item.get("content")
    images = 0
    if isinstance(content, list):
        images = sum(1 for part in content if part.get("type") == "input_image")
        content = [part for part in content if part.get("type") != "input_image"]
    text = json.dumps({**item, "content": content}, ensure_ascii=False)
    return estimate_tokens(text) + images * IMAGE_TOKENS
