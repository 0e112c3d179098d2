"""A turn without a socket: quota, gateway call, persistence and usage, end to end."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations.models import Message, ModelChoice, Quota, QuotaCounter, UsageRecord
from conversations.pipeline import records, turns

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def model_id(upstream_id: str) -> int:
    choice, _ = ModelChoice.objects.get_or_create(
        upstream_id=upstream_id, defaults={"label": upstream_id, "supports_reasoning": False}
    )
    return choice.pk


@sync_to_async
def reload(pk: int) -> Message:
    return Message.objects.get(pk=pk)


async def finished(answer_id: int, timeout: float = 15.0) -> Message:
    """Wait until the answer leaves the streaming state, as a reader polling would."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        answer = await reload(answer_id)
        if not answer.is_streaming:
            return answer
        await asyncio.sleep(0.02)
    raise AssertionError("the answer did not finish")


async def ask(user, text: str, conversation_id=None, model: str | None = None):
    result = await turns.send(
        user=user,
        conversation_id=conversation_id,
        text=text,
        model_id=await model_id(model) if model else None,
    )
    return result, await finished(result.plan.answer_id)


@sync_to_async
def held_and_used(user) -> list[tuple[int, int]]:
    return list(QuotaCounter.objects.filter(user=user).values_list("reserved", "used"))


@sync_to_async
def usage_records(**filters) -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(**filters).order_by("pk"))


async def test_complete_turn_records_reported_usage_and_settles_quota(gateway, user):
    _, answer = await ask(user, "Hello")

    record = (await usage_records(message_id=answer.pk))[0]
    assert not record.estimated
    assert record.total_tokens == answer.input_tokens + answer.output_tokens
    assert record.cost > 0
    assert await held_and_used(user) == [(0, record.total_tokens)] * 2


async def test_failed_stream_keeps_partial_text_and_releases_the_hold(gateway, user):
    _, answer = await ask(user, "Hello", model="sim-chat+fault=failed")

    assert answer.status == "failed"
    assert answer.text
    assert answer.error
    assert all(reserved == 0 for reserved, _ in await held_and_used(user))
    assert len(await usage_records(message_id=answer.pk)) == 1


async def test_refused_request_records_no_usage(gateway, user):
    _, answer = await ask(user, "Hello", model="sim-chat+fault=429")

    assert answer.status == "failed"
    assert answer.error_code == "rate_limited"
    assert "busy" in answer.error
    assert await usage_records() == []
    assert await held_and_used(user) == [(0, 0)] * 2


async def test_cut_stream_is_charged_as_an_estimate(gateway, user):
    _, answer = await ask(user, "Hello", model="sim-chat+fault=cut")

    assert answer.status == "failed"
    assert answer.error_code == "cut_off"
    record = (await usage_records(message_id=answer.pk))[0]
    assert record.estimated
    assert record.output_tokens > 0


async def test_over_quota_is_refused_before_the_gateway_is_called(gateway, user):
    await sync_to_async(Quota.objects.create)(user=user, tokens_per_day=5)
    requests_before = len(gateway.app.requests)

    with pytest.raises(records.Refused) as refused:
        await turns.send(user=user, conversation_id=None, text="Hello " * 100)

    assert "for today" in refused.value.user_message
    assert len(gateway.app.requests) == requests_before
    assert await sync_to_async(Message.objects.count)() == 0


async def test_max_output_tokens_is_capped_to_the_remaining_quota(gateway, user):
    await sync_to_async(Quota.objects.create)(user=user, tokens_per_day=200)

    await ask(user, "Hello")

    sent = [r.body for r in gateway.app.requests if r.body and r.body.get("stream")][-1]
    assert 16 <= sent["max_output_tokens"] < 200


async def test_orphaned_answer_becomes_interrupted_and_gives_back_its_hold(user, catalogue):
    @sync_to_async
    def orphan_with_hold():
        from conversations.models import Conversation
        from conversations.usage import quotas

        conversation = Conversation.objects.create(owner=user)
        question = Message.objects.create(conversation=conversation, role="user", text="Hi")
        reservation = quotas.reserve(user=user, input_estimate=10, max_output_tokens=100)
        stale = timezone.now() - timedelta(minutes=5)
        answer = Message.objects.create(
            conversation=conversation,
            parent=question,
            role="assistant",
            status="streaming",
            text="Half an answer",
            quota_hold={
                "counter_ids": list(reservation.counter_ids),
                "amount": reservation.amount,
                "input_estimate": 10,
            },
        )
        Message.objects.filter(pk=answer.pk).update(updated_at=stale)
        return answer.pk

    pk = await orphan_with_hold()

    assert await sync_to_async(records.recover_orphans)() == 1
    answer = await reload(pk)
    assert answer.status == "interrupted"
    assert answer.text == "Half an answer"
    assert all(reserved == 0 for reserved, _ in await held_and_used(user))
    assert (await usage_records(message_id=pk))[0].estimated


async def test_title_request_counts_as_usage(gateway, user):
    result, _ = await ask(user, "How do I bake sourdough bread?")
    for _ in range(200):
        if await usage_records(purpose="title"):
            break
        await asyncio.sleep(0.02)

    titles = await usage_records(purpose="title")
    assert len(titles) == 1
    assert titles[0].conversation_id == result.conversation.pk


async def test_without_gateway_storage_every_turn_replays_history(gateway, user, replaying):
    first, _ = await ask(user, "My name is Ming.")

    _, second = await ask(user, "What is my name?", conversation_id=first.conversation.pk)

    sent = [r.body for r in gateway.app.requests if r.body and r.body.get("stream")][-1]
    assert sent["store"] is False
    assert "previous_response_id" not in sent
    assert len(sent["input"]) == 3
    assert "Ming" in second.text


async def test_reasoning_model_without_storage_replays_encrypted_reasoning(
    gateway, user, replaying
):
    first, answer = await ask(user, "My name is Ming.", model="sim-reasoner")

    await ask(user, "What is my name?", conversation_id=first.conversation.pk, model="sim-reasoner")

    sent = [r.body for r in gateway.app.requests if r.body and r.body.get("stream")][-1]
    assert "reasoning.encrypted_content" in sent["include"]
    assert any(item.get("type") == "reasoning" for item in sent["input"])
    assert answer.replay_items
