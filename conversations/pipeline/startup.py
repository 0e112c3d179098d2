"""Housekeeping of a serving process, from when it starts serving (its first socket or
answer) for as long as it runs.

Recovery settles answers left streaming by a process that died. It runs at the start
and then every RECOVERY_SECONDS in every serving process, so an answer whose process
died ends as interrupted, its text kept and its hold settled, within about a minute,
whether or not anyone opens its conversation: reading a page never writes.
"""

from __future__ import annotations

import asyncio
import logging

from django.db import DatabaseError

from conversations.attachments import images as attachments
from conversations.pipeline import runs
from conversations.pipeline.dbthreads import in_database_thread

logger = logging.getLogger(__name__)

__all__ = ["RECOVERY_SECONDS", "keep_recovering", "recover", "recover_on_start"]

# How often each process looks for answers whose process died. With the 30 s grace of
# a heartbeat (models.ORPHAN_AFTER), an orphan is settled 30 to 60 s after its last beat.
RECOVERY_SECONDS = 30.0


async def keep_recovering() -> None:
    """Recover at once, then every RECOVERY_SECONDS until the process stops serving.

    A round that fails is logged and the next one tries again: the loop must outlive
    anything one round meets.
    """
    work = recover_on_start
    while True:
        try:
            await in_database_thread(work)()
        except Exception:
            logger.exception("recovery failed; trying again in %s s", RECOVERY_SECONDS)
        work = recover
        await asyncio.sleep(RECOVERY_SECONDS)


def recover_on_start() -> None:
    """Settle what a dead process left behind, and images uploaded but never sent."""
    if not recover():
        return
    removed = attachments.delete_unsent()
    if removed:
        logger.info("removed %d images uploaded but never sent", removed)


def recover() -> bool:
    """Settle answers left streaming by a process that died; return whether it could.

    Only answers whose heartbeat is older than the grace period are touched, so a
    second process starting beside a busy one leaves that one's answers alone. A
    database that is not ready yet (first deploy, migrations pending) or briefly gone
    is not fatal: the next round tries again.
    """
    try:
        recovered = runs.recover_orphans()
    except DatabaseError as error:
        logger.warning("recovery skipped: %s", error.__class__.__name__)
        return False
    if recovered:
        logger.info("marked %d orphaned answers as interrupted", recovered)
    return True
