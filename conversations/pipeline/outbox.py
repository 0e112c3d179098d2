"""What a chat socket sends, in order, and what it does with a page that stops reading.

Fragments from generations, transcripts and events all reach the page through one
queue, so nothing overtakes what was queued before it (a fragment landing after the
transcript that already holds it, say). The queue and the bytes the server still holds
for the page are measured: a page that leaves more than CHAT_SOCKET_BACKLOG_BYTES
unread is given up on (see `socketlimits` for why that bound exists), and the consumer
can tell whether the last transcript it queued has reached the page yet.

`OutboxMixin` is a part of `ChatConsumer` (conversations/pipeline/consumers.py), kept
apart because it is its own job. The consumer calls `open_outbox()` when the socket
opens, sets `closing` once it closes, and says how to let go of a page that stopped
reading (`give_up_on_reader`).
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from conversations.pipeline.socketlimits import BACKLOG_SCOPE_KEY, wire_size

logger = logging.getLogger(__name__)

__all__ = ["MAX_OUTBOX", "OutboxMixin"]

# Fragments queued for one page past which it is taken to have fallen behind.
MAX_OUTBOX = 2_000


class OutboxMixin:
    """One ordered queue to the page, bounded by what the page has left unread."""

    def open_outbox(self) -> None:
        """Start sending what is queued, in order."""
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.outbox_bytes = 0
        # Bytes ever handed to the server, and where the last transcript ends in that
        # count: it is unread while queued here or while the server holds bytes before it.
        self.sent_bytes = 0
        self.transcript_end = 0
        self.queued_transcript: str | None = None
        self.pump = asyncio.create_task(self.send_outbox())

    async def send_outbox(self) -> None:
        while True:
            # Measured once, when queued: a fragment goes to every tab of its watchers,
            # so each measurement is paid once per tab.
            html, size = await self.outbox.get()
            self.outbox_bytes -= size
            await self.send(text_data=html, size=size)
            if html is self.queued_transcript:
                self.queued_transcript = None
                self.transcript_end = self.sent_bytes

    def queue(self, html: str) -> None:
        """Queue HTML for the page behind everything queued before it."""
        size = wire_size(html)
        self.outbox_bytes += size
        self.outbox.put_nowait((html, size))

    def empty_outbox(self) -> None:
        """Drop everything queued: the page will not read it."""
        while not self.outbox.empty():
            self.outbox.get_nowait()
        self.outbox_bytes = 0

    async def send(self, text_data=None, bytes_data=None, close=False, *, size=None) -> None:
        """Send to the page, unless it has left too much unread: then close the socket.

        A frame goes out whenever the page has caught up, however large, so the bound
        is CHAT_SOCKET_BACKLOG_BYTES plus one frame. `size`: the text's `wire_size`,
        when the caller knows it.
        """
        if self.closing:
            return
        if self.unread_bytes() > settings.CHAT_SOCKET_BACKLOG_BYTES:
            logger.warning("user %s left too much unread; closing the socket", self.user.pk)
            await self.give_up_on_reader()
            return
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        if text_data:
            self.sent_bytes += wire_size(text_data) if size is None else size

    def unread_bytes(self) -> int:
        """Return the bytes queued for the page: in the outbox and, under Daphne, below."""
        backlog = self.scope.get(BACKLOG_SCOPE_KEY)
        return self.outbox_bytes + (backlog() if backlog else 0)

    def transcript_unread(self) -> bool:
        """True while the last transcript queued has not all reached the page."""
        if self.queued_transcript is not None:
            return True
        backlog = self.scope.get(BACKLOG_SCOPE_KEY)
        handed_over = self.sent_bytes - (backlog() if backlog else 0)
        return self.transcript_end > handed_over
