"""Checkpoints: the text so far of every streaming answer, saved about once a second.

One transaction a second for all the answers a process streams, not one per answer: at
a hundred concurrent answers, per-answer checkpoints were a hundred write transactions a
second queueing for the database ahead of new turns. A crash still loses at most about
a second of any answer, and a page opened elsewhere still shows nearly all of it.

Every checkpoint also moves the answers' heartbeats on (their `RunningAnswer` rows, in
one statement), and an answer that has stopped growing (a slow first token, a long tool
call) is checkpointed every HEARTBEAT_SECONDS anyway: the fresh heartbeat tells recovery
its process lives.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from conversations.models import Message, RunningAnswer
from conversations.pipeline.dbthreads import in_database_thread
from conversations.pipeline.endings import storable

if TYPE_CHECKING:
    from conversations.pipeline.live import Hub

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_SECONDS", "HEARTBEAT_SECONDS", "checkpoint", "ensure_checkpoints"]

CHECKPOINT_SECONDS = 1.0
HEARTBEAT_SECONDS = 10.0

_tickers: weakref.WeakKeyDictionary[Hub, asyncio.Task] = weakref.WeakKeyDictionary()


def ensure_checkpoints(hub: Hub) -> None:
    """Make sure the answers running in `hub` are being checkpointed."""
    ticker = _tickers.get(hub)
    if ticker is None or ticker.done():
        _tickers[hub] = asyncio.create_task(_checkpoint_while_streaming(hub), name="checkpoints")


async def _checkpoint_while_streaming(hub: Hub) -> None:
    """Every second, save every answer that grew (or is due a heartbeat), together.

    Stops when the process streams nothing; the next answer starts it again.
    """
    while hub.generations:
        await asyncio.sleep(CHECKPOINT_SECONDS)
        now = time.monotonic()
        due = [
            (generation.message_id, text)
            for generation in tuple(hub.generations.values())
            if (text := generation.checkpoint_due(now)) is not None
        ]
        if not due:
            continue
        try:
            await in_database_thread(checkpoint)(due)
        except Exception:
            logger.warning("checkpoint of %d answers failed", len(due), exc_info=True)


def checkpoint(answers: list[tuple[int, str]]) -> None:
    """Save the text so far of streaming answers and prove their process is alive.

    One transaction for all of them. An answer already final is left alone: its last
    words must not be overwritten by an older checkpoint.
    """
    now = timezone.now()
    with transaction.atomic():
        for message_id, text in answers:
            Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
                text=storable(text), updated_at=now
            )
        RunningAnswer.objects.filter(pk__in=[message_id for message_id, _ in answers]).update(
            heartbeat_at=now
        )
