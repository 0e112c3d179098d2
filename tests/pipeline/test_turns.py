"""A turn without a socket: quota, gateway call, persistence and usage, end to end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations.models import Message, Quota, QuotaCounter, RunningAnswer, UsageRecord
from conversations.pipeline import admission, runs, turns
from tests.support.turns import ask, reload
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.django_db(transaction=True)


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

    with pytest.raises(admission.Refused) as refused:
        await turns.send(user=user, conversation_id=None, text="Hello " * 100)

    assert "for today" in refused.value.user_message
    assert gateway.requests.streamed() == []
    assert await sync_to_async(Message.objects.count)() == 0


async def test_max_output_tokens_is_capped_to_the_remaining_quota(gateway, user):
    await sync_to_async(Quota.objects.create)(user=user, tokens_per_day=200)

    await ask(user, "Hello")

    [sent] = gateway.requests.streamed()
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
        )
        RunningAnswer.objects.create(
            message=answer,
            owner=user,
            worker_channel="a-process-that-died",
            quota_hold={
                "counter_ids": list(reservation.counter_ids),
                "amount": reservation.amount,
                "input_estimate": 10,
            },
            heartbeat_at=stale,
        )
        return answer.pk

    pk = await orphan_with_hold()

    assert await sync_to_async(runs.recover_orphans)() == 1
    answer = await reload(pk)
    assert answer.status == "interrupted"
    assert not await RunningAnswer.objects.filter(pk=pk).aexists()
    assert answer.text == "Half an answer"
    assert all(reserved == 0 for reserved, _ in await held_and_used(user))
    assert (await usage_records(message_id=pk))[0].estimated


async def test_title_request_counts_as_usage(gateway, user):
    result, _ = await ask(user, "How do I bake sourdough bread?")

    titles = await wait_until_async(
        lambda: usage_records(purpose="title"), what="the title's usage record"
    )
    assert len(titles) == 1
    assert titles[0].conversation_id == result.conversation.pk


async def test_without_gateway_storage_every_turn_replays_history(gateway, user, replaying):
    first, _ = await ask(user, "My name is Ming.")

    _, second = await ask(user, "What is my name?", conversation_id=first.conversation.pk)

    _, sent = gateway.requests.streamed()
    assert sent["store"] is False
    assert "previous_response_id" not in sent
    assert len(sent["input"]) == 3
    assert "Ming" in second.text


async def test_reasoning_model_without_storage_replays_encrypted_reasoning(
    gateway, user, replaying
):
    first, answer = await ask(user, "My name is Ming.", model="sim-reasoner")

    await ask(user, "What is my name?", conversation_id=first.conversation.pk, model="sim-reasoner")

    _, sent = gateway.requests.streamed()
    assert "reasoning.encrypted_content" in sent["include"]
    assert any(item.get("type") == "reasoning" for item in sent["input"])
    assert answer.replay_items
