"""Tool rounds hold the quota: each round reserves from what the earlier ones left.

Issue #17 point 3: with 3,000 tokens a day, a model that kept calling a tool got six
requests each allowed 2,997 output tokens, and its user was charged 18,282. Here the
simulator's `tools-forever` fault plays that model, over real HTTP, and a whole turn
runs through `turns.send` and the generation.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations.history import reads
from conversations.models import Message, ModelChoice, Quota, QuotaCounter, UsageRecord
from conversations.pipeline import fragments
from conversations.usage.ledger import estimate_tokens
from tests.support import attacks
from tests.support.turns import ask

pytestmark = pytest.mark.django_db(transaction=True)

LOOPING = "sim-chat+fault=tools-forever"
QUESTION = "What time is it now?"
QUOTA_STOP = (
    "Stopped: too little of your token quota is left to send the tool results back to the model."
)


@sync_to_async
def looping_model(upstream_id: str = LOOPING) -> None:
    ModelChoice.objects.create(
        upstream_id=upstream_id,
        label="Looping",
        supports_function_tools=True,
        tools=["get_current_time"],
        max_output_tokens=4096,
    )


@sync_to_async
def daily_limit(user, tokens: int) -> None:
    Quota.objects.create(user=user, tokens_per_day=tokens)


@sync_to_async
def day_counter(user) -> QuotaCounter:
    return QuotaCounter.objects.get(user=user, period="day")


@sync_to_async
def usage_records(message: Message) -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(message=message).order_by("pk"))


@sync_to_async
def bubble_text(message: Message) -> str:
    return fragments.message_html(reads.message_views([message])[0])


async def test_tool_rounds_reserve_what_is_left_and_stop_when_nothing_is(gateway, user, settings):
    settings.CHAT_MAX_TOOL_ROUNDS = 50  # the quota, not the round limit, must stop it
    await looping_model()
    await daily_limit(user, 2_000)

    _, message = await ask(user, QUESTION, model=LOOPING)

    caps = [body["max_output_tokens"] for body in gateway.requests.streamed()]
    assert len(caps) >= 4, caps
    assert caps[0] == 2_000 - estimate_tokens(QUESTION)
    assert caps == sorted(caps, reverse=True) and caps[-1] < caps[0] // 2, caps
    counter = await day_counter(user)
    assert counter.reserved == 0
    records = await usage_records(message)
    assert counter.used == sum(r.total_tokens for r in records)  # every round charged
    # Only the first request's input is estimated; later rounds hold an upper bound.
    first_round_overshoot = max(records[0].input_tokens - estimate_tokens(QUESTION), 0)
    assert counter.used <= 2_000 + first_round_overshoot, [r.total_tokens for r in records]
    assert message.status == Message.Status.INCOMPLETE
    assert message.error == QUOTA_STOP
    assert QUOTA_STOP in await bubble_text(message)
    attacks.record(
        "a gateway that keeps calling a tool, against a 2,000-token daily quota",
        before="every round asked for the whole quota: 6 rounds charged 18,282 of 3,000",
        observed=f"{len(caps)} rounds capped {caps[0]} down to {caps[-1]}; "
        f"{counter.used} charged; stopped with a message",
    )


async def test_the_next_turn_gets_only_what_the_tool_rounds_left(gateway, user, settings):
    await looping_model()
    await daily_limit(user, 2_000)
    await ask(user, QUESTION, model=LOOPING)
    used = (await day_counter(user)).used

    await ask(user, "Hello", model="sim-chat")

    sent = gateway.requests.streamed()[-1]
    assert sent["max_output_tokens"] == 2_000 - used - estimate_tokens("Hello")


async def test_tool_rounds_stop_at_the_configured_limit(gateway, user, settings):
    settings.CHAT_MAX_TOOL_ROUNDS = 2
    await looping_model()

    _, message = await ask(user, QUESTION, model=LOOPING)

    assert len(gateway.requests.streamed()) == 3  # the question and two rounds
    assert message.status == Message.Status.INCOMPLETE
    assert message.error == "The model kept calling tools; stopped after 2 rounds."
    assert len(message.tool_calls) == 2  # the third call was not run
    assert (await day_counter(user)).reserved == 0
