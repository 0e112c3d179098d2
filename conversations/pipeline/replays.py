"""The branch as input items, for a turn the gateway cannot continue upstream.

A stateless gateway (context mode "replay", or "auto" once it showed it forgets), an
expired chain, or a first turn: the request then carries the conversation itself.
Questions go with their attachments as this turn sends them (`inputs`), answers as
their own output items or text, and the oldest turns are cut to fit the model's
context window (`fit_history`). Pure functions over loaded rows, as `plans` is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from conversations.gateway.request import assistant_message, user_message
from conversations.groups.speaking import spoken
from conversations.models import Message
from conversations.pipeline.inputs import IMAGE_TOKENS, NO_INPUTS, Inputs
from conversations.usage.ledger import estimate_tokens

__all__ = [
    "REPLAYABLE",
    "costed_history",
    "fit_history",
    "fitted_history",
    "history_budget",
    "history_items",
    "item_tokens",
    "paired_tool_items",
]

REPLAYABLE = {
    Message.Status.COMPLETE,
    Message.Status.INCOMPLETE,
    Message.Status.CANCELLED,
    Message.Status.INTERRUPTED,
    Message.Status.FAILED,
}


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


def fit_history(
    items: Sequence[dict], *, budget: int | None, costs: Sequence[int] | None = None
) -> tuple[list[dict], int]:
    """Return the newest turns of `items` that fit in `budget` tokens, and how many were cut.

    A turn starts at each user message and holds everything up to the next one (the
    answer, its tool calls and their outputs), so a cut never separates a tool output
    from the call that asked for it. The last turn (the new question) is always kept.
    `costs` are the items' tokens where the caller knows them (`item_tokens` otherwise).
    """
    if costs is None:
        costs = [item_tokens(item) for item in items]
    turns: list[list[dict]] = []
    turn_costs: list[int] = []
    for item, item_cost in zip(items, costs, strict=True):
        if not turns or item.get("role") == "user":
            turns.append([])
            turn_costs.append(0)
        turns[-1].append(item)
        turn_costs[-1] += item_cost
    if budget is None or not turns:
        return list(items), 0
    kept: list[list[dict]] = []
    used = 0
    for turn, cost in zip(reversed(turns), reversed(turn_costs), strict=True):
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
    """Return roughly what one input item costs in the context window.

    Files (`input_file`) are left out: their data URL says nothing of their tokens, so
    questions with attachments are costed from `QuestionInputs.tokens` instead.
    """
    content = item.get("content")
    images = 0
    if isinstance(content, list):
        images = sum(1 for part in content if part.get("type") == "input_image")
        content = [
            part for part in content if part.get("type") not in ("input_image", "input_file")
        ]
    text = json.dumps({**item, "content": content}, ensure_ascii=False)
    return estimate_tokens(text) + images * IMAGE_TOKENS


def fitted_history(
    branch: Sequence[Message],
    inputs: Inputs,
    *,
    context_window: int | None,
    instructions: str,
    max_output_tokens: int | None,
    names: Mapping[int, str] | None = None,
) -> tuple[list[dict], int]:
    """Return `branch` as input items cut to fit the model's context window, and how
    many earlier turns were left out; `names`: a group's people (`costed_history`)."""
    budget = history_budget(context_window, instructions, max_output_tokens)
    items, costs = costed_history(branch, inputs, names)
    return fit_history(items, budget=budget, costs=costs)


def history_items(
    branch: Sequence[Message], inputs: Inputs, names: Mapping[int, str] | None = None
) -> list[dict]:
    """Return the branch as input items, for a turn that cannot continue upstream.

    Questions carry their text, documents and images as `inputs` has them: the way
    this turn's model takes them, so an earlier PDF goes as a file or as its text
    whatever the model that first read it took; a finished answer replays its own output
    (function calls with their outputs, in order, and encrypted reasoning) where it was
    kept, and otherwise its text as an assistant message.
    """
    return costed_history(branch, inputs, names)[0]


def costed_history(
    branch: Sequence[Message], inputs: Inputs, names: Mapping[int, str] | None = None
) -> tuple[list[dict], list[int]]:
    """Return `history_items` and what each costs in the context window.

    In a group (`names`: its people by user id) each question starts with its writer's
    name, and questions nobody answered (members talking among themselves) go too.
    """
    items: list[dict] = []
    costs: list[int] = []
    for message in branch:
        if message.role == Message.Role.USER:
            # Outside a group the author is not read: the rows may be loaded without it.
            text = spoken(message.text, message.author_id, names) if names else message.text
            attached = inputs.get(message.pk, NO_INPUTS)
            item = attached.message(text)
            items.append(item)
            # The attachments' cost as sent (a file's estimate, a document's text as cut).
            costs.append(item_tokens(user_message(text)) + attached.tokens)
        elif message.status in REPLAYABLE and (message.text or message.replay_items):
            if message.replay_items and message.status == Message.Status.COMPLETE:
                replayed = paired_tool_items(message.replay_items)
            elif message.text:
                replayed = [assistant_message(message.text)]
            else:
                replayed = []
            items.extend(replayed)
            costs.extend(item_tokens(item) for item in replayed)
    return items, costs
