"""Database work from async code: side by side on a few threads, each keeping its connection."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from conversations.models import Conversation, Message
from conversations.pipeline import checkpoints
from conversations.pipeline.dbthreads import in_database_thread

pytestmark = pytest.mark.django_db(transaction=True)


async def test_calls_run_side_by_side_not_one_after_another():
    # Two calls that can only finish together: one shared thread would deadlock here.
    both_started = threading.Barrier(2, timeout=10)

    def meet() -> str:
        both_started.wait()
        return threading.current_thread().name

    names = await asyncio.gather(in_database_thread(meet)(), in_database_thread(meet)())

    assert len(set(names)) == 2
    assert all(name.startswith("database") for name in names)


needs_sqlite = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="unpooled connections (SQLite) stay with their thread"
)


@needs_sqlite
async def test_each_thread_keeps_its_connection_between_calls():
    def which() -> tuple[int, int]:
        get_user_model().objects.exists()
        return threading.get_ident(), id(connection.connection)

    seen: dict[int, set[int]] = {}
    for _ in range(12):
        thread, raw = await in_database_thread(which)()
        seen.setdefault(thread, set()).add(raw)

    assert any(len(raws) == 1 for raws in seen.values())
    assert all(len(raws) == 1 for raws in seen.values()), seen


# A server dropping every connection is covered against a real Daphne process in
# tests/pipeline/test_reliability.py (test_postgresql_connections_cut_...): calls after the cut
# get live connections from the pool.


def test_a_checkpoint_saves_every_streaming_answer_and_spares_finished_ones():
    owner = get_user_model().objects.create(username="writer")
    conversation = Conversation.objects.create(owner=owner)
    streaming = [
        Message.objects.create(
            conversation=conversation, role="assistant", status="streaming", text=""
        )
        for _ in range(2)
    ]
    finished = Message.objects.create(
        conversation=conversation, role="assistant", status="complete", text="The whole answer."
    )

    checkpoints.checkpoint(
        [(streaming[0].pk, "First words"), (streaming[1].pk, "Other"), (finished.pk, "The")]
    )

    assert [m.text for m in Message.objects.filter(pk__in=[m.pk for m in streaming])] == [
        "First words",
        "Other",
    ]
    finished.refresh_from_db()
    assert finished.text == "The whole answer."
