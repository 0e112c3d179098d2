"""Answers being generated, as the database knows them: where each runs, and what
becomes of one whose process died.

A running answer has a `RunningAnswer` row from its turn's start to its final save
(`starts`, `endings`). A stop or a watcher in another process finds the owning
process's channel there; checkpoints move its heartbeat on; and `recover_orphans`,
which every serving process runs at its start and then periodically (`startup`),
ends an answer whose heartbeat stopped: interrupted, its text kept, its hold settled
on an estimate. No page read writes anything.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conversations.models import ORPHAN_AFTER, Conversation, Message, RunningAnswer
from conversations.usage import ledger, quotas

__all__ = ["INTERRUPTED", "recover_orphans", "running_answer", "worker_channel"]

# What an answer whose process died says (translated when shown: rendering.errortext).
INTERRUPTED = "The server restarted while this answer was being written."


def running_answer(user, message_id: int) -> RunningAnswer | None:
    """Return the running row of answer `message_id` of a conversation the user is in
    (any member may stop it), if it is still running."""
    return (
        RunningAnswer.objects.filter(
            message__conversation__in=Conversation.objects.for_member(user),
            message__status=Message.Status.STREAMING,
            pk=message_id,
        )
        .only("pk", "worker_channel")
        .first()
    )


def worker_channel(answer_id: int) -> str:
    """Return the channel of the process generating `answer_id`, or "" when none is."""
    return (
        RunningAnswer.objects.filter(pk=answer_id).values_list("worker_channel", flat=True).first()
        or ""
    )


def recover_orphans() -> int:
    """Mark answers whose process died mid-stream as interrupted, keeping their text.

    An answer is an orphan when its running row's heartbeat is older than the grace
    period; a streaming answer without one (none should exist) goes by its last write.
    Each is claimed in its own transaction, so two processes recovering at once settle
    its hold once.
    """
    stale = timezone.now() - ORPHAN_AFTER
    orphans = (
        Message.objects.filter(status=Message.Status.STREAMING)
        .filter(Q(running__heartbeat_at__lt=stale) | Q(running__isnull=True, updated_at__lt=stale))
        .select_related("conversation", "running")
    )
    recovered = 0
    for orphan in orphans:
        with transaction.atomic():
            claimed = Message.objects.filter(pk=orphan.pk, status=Message.Status.STREAMING).update(
                status=Message.Status.INTERRUPTED, error=INTERRUPTED, error_code="interrupted"
            )
            if claimed:
                RunningAnswer.objects.filter(pk=orphan.pk).delete()
                charge_orphan(orphan)
            recovered += claimed
    return recovered


def charge_orphan(orphan: Message) -> None:
    """Settle the hold of an answer whose process died, on an estimate of its use.

    The gateway's usage was lost with the process; the request did reach it, so the
    checkpointed text and the question are charged as an estimate, not forgotten.
    """
    hold = orphan.running.quota_hold if hasattr(orphan, "running") else {}
    if not hold:
        return
    # Whoever asked pays (a group member), as the hold says.
    owner_id = orphan.running.owner_id or orphan.conversation.owner_id
    ledger.record_spending(
        [
            ledger.Spent(
                ledger.estimated_usage(hold.get("input_estimate", 0), orphan.text),
                estimated=True,
            )
        ],
        reservation=quotas.Reservation(owner_id, tuple(hold["counter_ids"]), hold["amount"], None),
        user_id=owner_id,
        conversation_id=orphan.conversation_id,
        message=orphan,
        model_choice=None,
        model_name=orphan.model_name,
    )
