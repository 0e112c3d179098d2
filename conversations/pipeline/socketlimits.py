"""What one chat socket may cost the server: frames it may send, bytes it may leave unread.

A client that stops reading still gets every fragment and transcript the consumer sends:
under Daphne, `send` returns at once and the bytes wait in Twisted's write buffer, which
has no limit. One socket asking for a 310 KB transcript 1,500 times grew the process by
670 MB. The consumer therefore asks how much is still waiting for this client (see
`SendBacklog`) and closes the socket past a bound, and meters the frames it accepts.
"""

from __future__ import annotations

import fcntl
import functools
import termios
import time
from collections.abc import Callable

__all__ = ["BACKLOG_SCOPE_KEY", "FrameBudget", "SendBacklog", "transport_backlog", "wire_size"]

# Where `SendBacklog` leaves the gauge for the consumer.
BACKLOG_SCOPE_KEY = "chatweb.send_backlog"


class FrameBudget:
    """A token bucket: `rate` frames a second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self) -> bool:
        """Spend one frame's token; return False when none is left."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def transport_backlog(send) -> Callable[[], int] | None:
    """Return a gauge of the bytes Daphne holds for this client, or None elsewhere.

    Daphne hands each application `partial(server.handle_reply, protocol)` as its
    `send`; the protocol is autobahn's, over a Twisted transport. What the client has
    not taken is autobahn's send queue, the transport's write buffer and, on Linux,
    the kernel's unacknowledged send queue (which a client that stops reading fills
    first). Other servers (and the test communicator) get None: the consumer then
    bounds only what it queues itself.
    """
    protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
    if protocol is None or getattr(protocol, "transport", None) is None:
        return None

    def backlog() -> int:
        queued = sum(len(data) for data, _ in getattr(protocol, "send_queue", ()))
        transport = protocol.transport
        # TLS wraps the TCP transport; its own buffer empties into the one below.
        while transport is not None and not hasattr(transport, "_tempDataLen"):
            transport = getattr(transport, "transport", None)
        if transport is None:
            return queued
        buffered = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        return queued + buffered + kernel_backlog(transport)

    return backlog


def kernel_backlog(transport) -> int:
    """Return the bytes sent on the socket but not yet acknowledged by the client."""
    try:
        handle = transport.getHandle()
        return int.from_bytes(
            fcntl.ioctl(handle.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"), "little", signed=True
        )
    except (AttributeError, OSError, ValueError):
        return 0


class SendBacklog:
    """ASGI middleware: give websocket consumers `scope[BACKLOG_SCOPE_KEY]`, a gauge.

    The gauge must be taken from the `send` the server passed in, before any middleware
    wraps it (Channels' session middleware does), so this sits outermost on websockets.
    """

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            gauge = transport_backlog(send)
            if gauge is not None:
                scope = {**scope, BACKLOG_SCOPE_KEY: gauge}
        return await self.application(scope, receive, send)


def wire_size(text: str) -> int:
    """Return the bytes a text frame of `text` takes on the wire, header included.

    Called for every fragment queued for every tab, so it must not cost a pass over the
    text per tab: an ASCII string (CPython knows it is one without looking) is its
    length, and any other is encoded once for all the tabs it goes to.
    """
    size = len(text) if text.isascii() else _encoded_length(text)
    return size + (2 if size < 126 else 4 if size < 65_536 else 10)


# The hub hands one fragment's HTML to every watching tab in a row: one entry is enough.
@functools.lru_cache(maxsize=1)
def _encoded_length(text: str) -> int:
    return len(text.encode())
