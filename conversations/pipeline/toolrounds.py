"""Tool rounds: running the functions a model calls, and paying for the next request.

A model that calls tools is answered in rounds: its calls are run (as the turn's user,
with only the tools the turn offered), and their results are sent back in a new request,
which the gateway bills for everything before it. So each round is charged when it ends
and the next one holds what it may cost from what is left of the quota, with a generous
estimate of its input: the quota can never be overrun by a model that keeps calling.
The loop itself is `Generation._turn` (conversations/pipeline/generation.py).
"""

from __future__ import annotations

import json
from dataclasses import replace

from django.contrib.auth import get_user_model

from conversations.pipeline import admission
from conversations.pipeline.answer import AnswerState
from conversations.pipeline.dbthreads import in_database_thread
from conversations.pipeline.plans import TurnPlan
from conversations.tools import REGISTRY, ToolContext, run_call

__all__ = ["QUOTA_STOPPED_TOOLS", "next_round_input", "plan_next_round", "run_tool_call"]

# Why a tool-calling answer ended early, stored in English (rendering/errortext.py).
QUOTA_STOPPED_TOOLS = (
    "Stopped: too little of your token quota is left to send the tool results back to the model."
)


async def plan_next_round(
    plan: TurnPlan, state: AnswerState, outputs: list[dict]
) -> TurnPlan | None:
    """Charge the rounds so far and hold the next one's cost; return the plan for the
    next request (its output cap is what the new hold allows), or None if the quota has
    no room for it: every round so far is then charged."""
    if plan.reservation is None:
        return plan
    hold = in_database_thread(admission.hold_next_round)
    following = await hold(
        plan,
        used_so_far=sum(usage.total_tokens for usage in state.all_usages),
        input_estimate=next_round_input(plan, state, outputs),
    )
    if following is None:
        return None
    return replace(plan, reservation=following, max_output_tokens=following.max_output_tokens)


def next_round_input(plan: TurnPlan, state: AnswerState, outputs: list[dict]) -> int:
    """Return what the request handing back `outputs` will be billed as input, at most.

    It carries everything the last response was billed for, that response's own output
    and the tool results. The first two are the gateway's own counts; the results are
    counted at a token per UTF-8 byte, which no BPE tokenizer exceeds, so the hold is
    never short. Without the gateway's counts, the turn's estimate and everything added
    since stand in for them.
    """
    last = state.usage
    if last is not None:
        return last.input_tokens + last.output_tokens + utf8_bytes(outputs)
    # The turn's output items so far end with these results.
    return plan.input_estimate + utf8_bytes(state.replay_items)


def utf8_bytes(items: list[dict]) -> int:
    return len(json.dumps(items, ensure_ascii=False).encode())


def run_tool_call(plan: TurnPlan, call):
    """Run one function call the model asked for, as the turn's user, never raising."""
    user = get_user_model().objects.get(pk=plan.user_id)
    offered = {name: REGISTRY[name] for name in plan.tools if name in REGISTRY}
    context = ToolContext(user=user, conversation_id=plan.conversation_id)
    return run_call(call.name, call.arguments, context, tools=offered)
