"""Work done once when a server process starts serving (its first socket or answer)."""

from __future__ import annotations

import logging

from django.db import DatabaseError

from conversations.attachments import images as attachments
from conversations.pipeline import records

logger = logging.getLogger(__name__)


def recover_on_start() -> None:
    """Settle answers left streaming by a process that died.

    Only answers whose last checkpoint is older than the grace period are touched, so
    a second process starting beside a busy one leaves that one's answers alone. A
    database that is not ready yet (first deploy, migrations pending) is not fatal:
    the same recovery runs whenever a conversation is read.
    """
    try:
        recovered = records.recover_orphans()
    except DatabaseError as error:
        logger.warning("start-up recovery skipped: %s", error.__class__.__name__)
        return
    if recovered:
        logger.info("marked %d orphaned answers as interrupted", recovered)
    removed = attachments.delete_unsent()
    if removed:
        logger.info("removed %d images uploaded but never sent", removed)
