"""Send a timeline over ASGI at a given pace: the streaming half of the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from .http import Send, sse_frame
from .timeline import Timeline

__all__ = ["Pace", "write_stream"]


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast the simulated model writes; `tokens_per_second` 0 means no waiting at all."""

    tokens_per_second: float
    first_token_delay: float = 0.0
    delay_before_start: float = 0.0  # the `delay` fault: silence before the first event

    def seconds(self, tokens: float) -> float:
        """Return how long generating `tokens` tokens takes."""
        return tokens / self.tokens_per_second if self.tokens_per_second > 0 else 0.0

    def total_seconds(self, timeline: Timeline) -> float:
        """Return how long the whole timeline takes, for non-streaming replies."""
        return self.delay_before_start + self.first_token_delay + self.seconds(timeline.total_cost)


async def write_stream(
    send: Send, timeline: Timeline, pace: Pace, before_terminal: Callable[[], None]
) -> None:
    """Send every step as server-sent events, then end the body.

    `before_terminal` runs just before the terminal event goes out, so a client that
    continues from this response the moment it ends will find it stored.
    """
    if pace.delay_before_start:
        await asyncio.sleep(pace.delay_before_start)
    waiting_for_first_token = True
    for step in timeline.steps:
        seconds = pace.seconds(step.cost)
        if waiting_for_first_token and step.event and step.event["type"].endswith(".delta"):
            seconds += pace.first_token_delay
            waiting_for_first_token = False
        if seconds:
            await asyncio.sleep(seconds)
        if step.hang:
            await asyncio.Event().wait()  # until the client gives up and we are cancelled
        if step.is_terminal:
            before_terminal()
        body = step.raw if step.raw is not None else sse_frame(step.event or {})
        await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
