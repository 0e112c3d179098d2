"""SIGTERM under Daphne: drain the answers this process streams, then stop.

Daphne has no ASGI lifespan support and no shutdown hook: Twisted's reactor handles
SIGTERM by stopping at once, and Daphne's "before shutdown" trigger cancels every
connection's application. Answers (asyncio tasks in the hub) would be cut mid-stream.

So once the reactor runs, SIGTERM is taken over: the listening sockets close (the load
balancer sends new connections to the other processes), `conversations.pipeline.shutdown.drain`
lets running answers finish for up to SHUTDOWN_GRACE_SECONDS and saves the rest as
interrupted, and only then is the handler Twisted installed called, which stops the
reactor as before. A second SIGTERM cuts the wait short (the answers are still saved).

Only when Daphne itself installed signal handlers: test servers that run Daphne in a
child process without them (channels' DaphneProcess) keep SIGTERM's default.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from django.conf import settings

logger = logging.getLogger(__name__)

__all__ = ["install_under_daphne"]


def install_under_daphne() -> None:
    """Take over SIGTERM once Daphne's reactor runs (no-op outside Daphne)."""
    if "daphne.server" not in sys.modules:
        return
    # Daphne has installed its asyncio reactor by now: importing it here is safe.
    from twisted.internet import reactor

    reactor.callWhenRunning(_take_over_sigterm, reactor)


def _take_over_sigterm(reactor) -> None:
    stop_reactor = signal.getsignal(signal.SIGTERM)
    if not callable(stop_reactor):
        return
    # The drain's task and its "cut short" event, once SIGTERM has come.
    draining: list = []

    def on_sigterm(number, frame) -> None:
        # Like Twisted's own handler: hand the work to the reactor's thread and loop.
        reactor.callFromThread(begin_or_hurry)

    def begin_or_hurry() -> None:
        if draining:
            logger.warning("second SIGTERM: ending the grace period now")
            draining[1].set()
            return
        cut_short = asyncio.Event()
        _stop_listening(reactor)
        draining.extend([asyncio.ensure_future(drain_then_stop(cut_short)), cut_short])

    async def drain_then_stop(cut_short: asyncio.Event) -> None:
        from conversations.pipeline.shutdown import drain

        try:
            await drain(settings.SHUTDOWN_GRACE_SECONDS, cut_short=cut_short)
        except Exception:
            logger.exception("draining failed; stopping anyway")
        stop_reactor(signal.SIGTERM, None)

    signal.signal(signal.SIGTERM, on_sigterm)


def _stop_listening(reactor) -> None:
    """Close the listening sockets; connections already open carry on."""
    from twisted.internet.interfaces import IListeningPort

    for reader in reactor.getReaders():
        if IListeningPort.providedBy(reader):
            reader.stopListening()
