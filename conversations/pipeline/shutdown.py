"""Deploys that lose nothing: what a server process does between SIGTERM and its exit.

A generation is a task inside the process, so stopping the process at once would cut
every answer it streams (recovery would only mark them interrupted 30 s later). On
SIGTERM the process instead

1. takes no new turns: a send gets `Restarting`, which the page shows ("The server is
   restarting; retrying…") and retries once its socket reconnects, to another process
   behind the load balancer (chatweb/graceful.py also stops listening for new ones);
2. lets the answers it streams finish, for up to SHUTDOWN_GRACE_SECONDS;
3. ends what is still running as interrupted, keeping its text and charging what it
   used, at once; then the server stops.

Nothing here knows about Daphne or signals: chatweb/graceful.py calls `drain`.
"""

from __future__ import annotations

import asyncio
import logging

from django.utils.translation import gettext

from conversations.pipeline.admission import Refused
from conversations.pipeline.live import Hub, get_hub

logger = logging.getLogger(__name__)

__all__ = ["Restarting", "drain", "refuse_while_draining"]

# Enough for the final writes of interrupted answers (one transaction each, with one
# retry on a fresh connection), not so long that the SIGKILL comes first.
FINAL_WRITES_SECONDS = 10.0


class Restarting(Refused):
    """This process is shutting down: the page should send again, to another one."""


def refuse_while_draining() -> None:
    """Refuse a new turn if this process is shutting down."""
    if get_hub().draining:
        raise Restarting(gettext("The server is restarting; retrying…"))


async def drain(
    grace: float, *, hub: Hub | None = None, cut_short: asyncio.Event | None = None
) -> int:
    """Let running answers finish for up to `grace` seconds; interrupt the rest.

    `cut_short` (a second SIGTERM) ends the wait early. Return how many answers had to
    be interrupted.
    """
    hub = hub or get_hub()
    hub.draining = True
    logger.warning(
        "shutting down: no new turns; waiting up to %s s for %d running answers",
        grace,
        len(hub.generations),
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    cut_short = cut_short or asyncio.Event()
    while hub.generations and not cut_short.is_set():
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        running = [asyncio.ensure_future(g.finished()) for g in tuple(hub.generations.values())]
        interrupted = asyncio.ensure_future(cut_short.wait())
        # A turn that passed the check just before SIGTERM may register meanwhile: look
        # again at least every second.
        await asyncio.wait([*running, interrupted], timeout=min(remaining, 1.0))
        for waiter in (*running, interrupted):
            waiter.cancel()
    left = tuple(hub.generations.values())
    if not left:
        logger.warning("shutting down: every answer finished")
        return 0
    logger.warning("shutting down: grace over, saving %d answers as interrupted", len(left))
    for generation in left:
        generation.interrupt()
    _, pending = await asyncio.wait(
        [asyncio.ensure_future(g.finished()) for g in left], timeout=FINAL_WRITES_SECONDS
    )
    if pending:
        logger.error("shutting down: %d answers not saved in time; recovery will", len(pending))
    return len(left)
