"""Send a timeline over ASGI at a given pace: the streaming half of the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from .http import Send, sse_frame
from .timeline import Timeline

__all__ = ["Pace", "write_stream"]

TEXT_DELTA = "response.output_text.delta"


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
    send: Send,
    timeline: Timeline,
    pace: Pace,
    before_terminal: Callable[[], None],
    text_sent_at: list[float] | None = None,
) -> None:
    """Send every step as server-sent events, then end the body.

    Each step is due at a fixed time from the start, so a busy event loop delays a
    token but does not slow every later one (a real model keeps its pace too).
    `before_terminal` runs just before the terminal event goes out, so a client that
    continues from this response the moment it ends will find it stored.
    `text_sent_at`, when given, receives the wall-clock time each text delta went out
    (the benchmarks measure lag from it).
    """
    loop = asyncio.get_running_loop()
    due = loop.time() + pace.delay_before_start
    waiting_for_first_token = True
    for step in timeline.steps:
        due += pace.seconds(step.cost)
        if waiting_for_first_token and step.is_token:
            due += pace.first_token_delay
            waiting_for_first_token = False
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        if step.hang:
            await asyncio.Event().wait()  # until the client gives up and we are cancelled
        if step.is_terminal:
            before_terminal()
        body = step.raw if step.raw is not None else sse_frame(step.event or {})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        if text_sent_at is not None and step.event and step.event["type"] == TEXT_DELTA:
            text_sent_at.append(time.time())
    await send({"type": "http.response.body", "body": b"", "more_body": False})
