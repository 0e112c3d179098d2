"""Answers whose process died: settled by the serving processes, never by a page read.

A running answer has a `RunningAnswer` row whose heartbeat its checkpoints move on. Every
serving process looks for stale ones when it starts and then periodically; reading a
conversation writes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.history import reads
from conversations.models import Message, QuotaCounter, RunningAnswer, UsageRecord
from conversations.pipeline import checkpoints, runs, startup
from conversations.pipeline.live import get_hub
from tests.support.direct_turns import finish, send
from tests.support.waiting import wait_until_async

STALE = timedelta(minutes=5)


def streaming_answer(user, text: str = "Half an answer") -> int:
    """Start a turn as a send does and checkpoint some of its answer; return its id."""
    result = send(user, text="Tell me a story")
    checkpoints.checkpoint([(result.plan.answer_id, text)])
    return result.plan.answer_id


def lose_its_process(answer_id: int) -> None:
    """Let the answer's heartbeat go stale, as when its process was killed."""
    RunningAnswer.objects.filter(pk=answer_id).update(heartbeat_at=timezone.now() - STALE)


def status_of(answer_id: int) -> str:
    return Message.objects.get(pk=answer_id).status


@pytest.mark.django_db
def test_a_turn_runs_with_its_process_and_hold_and_ends_without_them(user, catalogue):
    result = send(user)

    running = RunningAnswer.objects.get(pk=result.plan.answer_id)
    assert running.worker_channel == "worker-1"
    assert running.quota_hold["amount"] == result.plan.reservation.amount
    assert runs.worker_channel(result.plan.answer_id) == "worker-1"

    finish(result.plan)

    assert not RunningAnswer.objects.exists()
    assert runs.worker_channel(result.plan.answer_id) == ""


@pytest.mark.django_db
def test_reading_a_conversation_with_a_dead_answer_writes_nothing(user, catalogue):
    answer_id = streaming_answer(user)
    lose_its_process(answer_id)
    conversation_id = Message.objects.get(pk=answer_id).conversation_id

    with CaptureQueriesContext(connection) as statements:
        view = reads.transcript(user, conversation_id)

    assert view is not None
    writes = [
        query["sql"]
        for query in statements.captured_queries
        if query["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")
    ]
    assert writes == []
    assert status_of(answer_id) == "streaming"


@pytest.mark.django_db
def test_an_answer_whose_process_died_is_interrupted_with_its_text_and_charged(user, catalogue):
    answer_id = streaming_answer(user, "Once upon a time")
    lose_its_process(answer_id)

    assert runs.recover_orphans() == 1

    answer = Message.objects.get(pk=answer_id)
    assert (answer.status, answer.error_code, answer.text) == (
        "interrupted",
        "interrupted",
        "Once upon a time",
    )
    assert not RunningAnswer.objects.filter(pk=answer_id).exists()
    [record] = UsageRecord.objects.filter(message_id=answer_id)
    assert record.estimated and record.total_tokens > 0
    counters = QuotaCounter.objects.filter(user=user).values_list("reserved", "used")
    assert all(reserved == 0 and used == record.total_tokens for reserved, used in counters)
    # Settled once: a second round finds nothing.
    assert runs.recover_orphans() == 0


@pytest.mark.django_db
def test_a_checkpoint_keeps_a_quiet_answer_alive(user, catalogue):
    answer_id = streaming_answer(user)
    lose_its_process(answer_id)

    # Its process still runs: the next checkpoint (a heartbeat) comes before recovery.
    checkpoints.checkpoint([(answer_id, "Half an answer, and more")])

    assert runs.recover_orphans() == 0
    assert status_of(answer_id) == "streaming"


@pytest.mark.django_db(transaction=True)
async def test_a_serving_process_recovers_dead_answers_periodically_without_a_read(
    user, catalogue, monkeypatch
):
    monkeypatch.setattr(startup, "RECOVERY_SECONDS", 0.05)
    rounds: list[int] = []
    recover = runs.recover_orphans

    def counted_recovery() -> int:
        rounds.append(1)
        return recover()

    monkeypatch.setattr(runs, "recover_orphans", counted_recovery)
    dead = await sync_to_async(streaming_answer)(user)
    await sync_to_async(lose_its_process)(dead)
    alive = await sync_to_async(streaming_answer)(user)

    get_hub()  # the process starts serving: its first socket or answer

    await wait_until_async(
        lambda: Message.objects.filter(pk=dead, status="interrupted").aexists(),
        what="recovery at the start",
    )
    seen = len(rounds)

    async def another_round() -> bool:
        return len(rounds) > seen

    await wait_until_async(another_round, what="a later round")
    assert await sync_to_async(status_of)(alive) == "streaming"

    await sync_to_async(lose_its_process)(alive)

    await wait_until_async(
        lambda: Message.objects.filter(pk=alive, status="interrupted").aexists(),
        what="a periodic round",
    )


@pytest.mark.django_db(transaction=True)
def test_the_migrations_move_a_streaming_answers_state_to_its_running_row(user):
    before = [("conversations", "0013_message_rendered_html")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    conversation = old.get_model("conversations", "Conversation").objects.create(owner_id=user.pk)
    messages = old.get_model("conversations", "Message").objects
    streaming = messages.create(
        conversation=conversation,
        role="assistant",
        status="streaming",
        text="Half",
        worker_channel="specific.worker!1",
        quota_hold={"counter_ids": [1, 2], "amount": 300, "input_estimate": 20},
    )
    finished = messages.create(conversation=conversation, role="assistant", text="Done")

    # Up to today's tables (0014 makes the running row, 0015 gives it its owner), which
    # also leaves the database as every other test expects it.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    running = RunningAnswer.objects.get()
    assert running.message_id == streaming.pk
    assert running.owner == user
    assert running.worker_channel == "specific.worker!1"
    assert running.quota_hold == {"counter_ids": [1, 2], "amount": 300, "input_estimate": 20}
    assert running.heartbeat_at == Message.objects.get(pk=streaming.pk).updated_at
    assert not RunningAnswer.objects.filter(pk=finished.pk).exists()
