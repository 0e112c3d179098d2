"""Decide what one response contains: reasoning, a web search, a function call, a message.

The plan is pure data; `timeline.py` turns it into events. Order of decisions:
1. a `function_call_output` in the new input → answer using the tool's output;
2. a title request → a title of a few words;
3. a question scripted to be refused → a refusal;
4. a question a declared function tool can answer → call it (and stop there);
5. a declared web search tool → search, then answer with citations;
6. otherwise a plain answer.
Reasoning models put a reasoning item first in every case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .answers import (
    REFUSAL,
    approach_for,
    compose_reply,
    compose_title,
    compose_tool_reply,
    is_title_request,
    latest_user_message,
    wants_refusal,
)
from .conversation import FunctionCall, FunctionOutput, Message, Turn
from .params import Params
from .reasoning import PlannedReasoning, plan_reasoning
from .search import Citation, compose_search_reply, search_query
from .tokens import is_cjk
from .tools import ToolCall, choose_function_call

__all__ = ["PlannedItem", "PlannedMessage", "PlannedSearch", "plan_response"]


@dataclass(frozen=True, slots=True)
class PlannedSearch:
    query: str
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    text: str
    citations: list[Citation] = field(default_factory=list)
    refusal: bool = False


PlannedItem = PlannedReasoning | PlannedSearch | ToolCall | PlannedMessage


def plan_response(
    params: Params, history: list[Turn], *, tools_forever: bool = False
) -> list[PlannedItem]:
    """Return the output items to generate for `params`, after the earlier `history`.

    With `tools_forever` (the `tools-forever` fault) a tool's output is not used: the
    question calls its tool again, every round.
    """
    turns = [*history, *params.turns]
    question = latest_user_message(turns)
    text = question.text if question else ""
    chinese = is_cjk(text)
    items: list[PlannedItem]
    tool_output = None if tools_forever else _answered_call(params.turns, turns)
    if tool_output is not None:
        items = [PlannedMessage(compose_tool_reply(*tool_output, chinese))]
        approach = "The tool returned a result; I'll turn it into a clear answer."
    elif is_title_request(params.instructions, text):
        items = [PlannedMessage(compose_title(_first_user_text(params.turns) or text))]
        approach = "A title of a few words is all that's needed."
    elif wants_refusal(text):
        items = [PlannedMessage(REFUSAL["zh" if chinese else "en"], refusal=True)]
        approach = "This is something I shouldn't help with, so I'll decline politely."
    elif (
        call := choose_function_call(
            params.function_tools, params.tool_choice, text, web_search=params.web_search
        )
    ) is not None:
        items = [call]
        approach = f"The `{call.name}` tool can answer this, so I'll call it."
    elif params.web_search:
        query = search_query(text)
        reply, citations = compose_search_reply(query)
        items = [
            PlannedSearch(query, tuple(c.url for c in citations)),
            PlannedMessage(reply, citations),
        ]
        approach = "I should search the web first and cite the sources I use."
    else:
        items = [PlannedMessage(compose_reply(question, turns, params.model))]
        approach = approach_for(text)
    if params.model.reasoning:
        reasoning = plan_reasoning(
            question=text,
            approach=approach,
            effort=params.effort or params.model.default_effort or "medium",
            summary_setting=params.summary,
            raw=params.model.raw_reasoning,
            encrypted="reasoning.encrypted_content" in params.include,
        )
        items.insert(0, reasoning)
    return items


def _answered_call(new_turns: list[Turn], turns: list[Turn]) -> tuple[FunctionCall, str] | None:
    """Return the call answered by the last new turn, if it is a function output."""
    if not new_turns or not isinstance(new_turns[-1], FunctionOutput):
        return None
    output = new_turns[-1]
    for turn in turns:
        if isinstance(turn, FunctionCall) and turn.call_id == output.call_id:
            return turn, output.output
    return None


def _first_user_text(turns: list[Turn]) -> str:
    return next((t.text for t in turns if isinstance(t, Message) and t.role == "user"), "")
