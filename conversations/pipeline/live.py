"""The running generations of this process and the sockets watching them.

A generation belongs to no socket: it registers here, and any consumer in the same
process that shows its conversation attaches as a watcher and receives fragments
straight from it, in order, with no channel-layer hop. Watchers in other processes reach
it through this process's worker channel (`generation.watch`, `generation.stop`), which
the hub listens on.

Each fragment carries a sequence number. A watcher attaching mid-stream first receives
a snapshot (the whole body so far, at sequence N) and then only fragments after N, so
the page shows no gap and no duplicate.

Each watcher reads its own language. The Markdown is the same for all of them, but the
notices beside it ("Thinking…", "Searching the web…"), code copy buttons and the final
bubble are words: a fragment that carries them is rendered once per language its
watchers read, and each watcher takes its own.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from channels.layers import get_channel_layer

from conversations.pipeline.startup import keep_recovering

logger = logging.getLogger(__name__)

__all__ = ["Fragment", "Hub", "Running", "Watcher", "get_hub", "spawn"]

# asyncio keeps only weak references to tasks; these fire-and-forget ones live here
# until they finish.
_background: set[asyncio.Task] = set()


def spawn(coroutine) -> asyncio.Task:
    """Run `coroutine` in the background without letting it be garbage-collected."""
    task = asyncio.create_task(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


@dataclass(frozen=True, slots=True)
class Fragment:
    """A piece of HTML for one answer, in the order the page must apply it.

    `html` is in the generation's language; `translations` holds the same fragment in
    the other languages its watchers read, when its words differ (None when they do not,
    the usual case: plain text deltas, or every watcher reading one language).
    """

    message_id: int
    seq: int
    html: str
    snapshot: bool = False
    final: bool = False
    translations: Mapping[str, str] | None = None

    def html_for(self, language: str) -> str:
        """Return the fragment as a watcher reading `language` should see it."""
        if self.translations is None:
            return self.html
        return self.translations.get(language, self.html)


class Watcher(Protocol):
    language: str

    def deliver(self, fragment: Fragment) -> None:
        """Take a fragment without blocking the generation."""


class Running(Protocol):
    """What the hub and the process's housekeeping ask of a running answer.

    `Generation` (conversations/pipeline/generation.py) is the one kind there is; the
    hub names only what it needs, so that it imports nothing that runs answers.
    """

    message_id: int
    # Watchers in other processes: reply channel -> the language they read.
    remote_watchers: dict[str, str]

    def snapshot(self, language: str | None = None) -> Fragment:
        """Return the body so far, for a watcher attaching mid-stream."""

    async def add_remote_watcher(self, channel: str, *, language: str | None = None) -> None:
        """Feed a watcher in another process."""

    def stop(self) -> None:
        """Stop the stream, keeping the answer so far (the Stop button)."""

    def interrupt(self) -> None:
        """End the stream because the process is shutting down (`shutdown.drain`)."""

    async def finished(self) -> None:
        """Wait until the answer has ended."""

    def checkpoint_due(self, now: float) -> str | None:
        """Return the text to checkpoint now, or None (`checkpoints`)."""


class Hub:
    """Running generations and local watchers, for one process (one event loop)."""

    def __init__(self) -> None:
        self.generations: dict[int, Running] = {}
        self.watchers: dict[int, set[Watcher]] = defaultdict(set)
        self.worker_channel: str = ""
        self._listener: asyncio.Task | None = None
        # Set on SIGTERM (pipeline/shutdown.py): running answers finish, no new ones start.
        self.draining = False

    def register(self, generation: Running) -> None:
        self.generations[generation.message_id] = generation

    def unregister(self, generation: Running) -> None:
        self.generations.pop(generation.message_id, None)
        self.watchers.pop(generation.message_id, None)

    def attach(self, message_id: int, watcher: Watcher) -> Fragment | None:
        """Start feeding `watcher`; return the snapshot, or None if not running here."""
        generation = self.generations.get(message_id)
        if generation is None:
            return None
        # Snapshot first: its flush publishes to the existing watchers only, so the new
        # one cannot receive a delta ahead of the body it applies to.
        snapshot = generation.snapshot(watcher.language)
        self.watchers[message_id].add(watcher)
        return snapshot

    def detach(self, watcher: Watcher) -> None:
        for watchers in self.watchers.values():
            watchers.discard(watcher)

    def languages(self, message_id: int) -> set[str]:
        """Return the languages the local watchers of an answer read."""
        return {watcher.language for watcher in self.watchers.get(message_id, ())}

    def publish(self, fragment: Fragment) -> None:
        for watcher in tuple(self.watchers.get(fragment.message_id, ())):
            watcher.deliver(fragment)

    async def ensure_worker_channel(self) -> str:
        """Return this process's channel for generation requests, listening on it."""
        if not self.worker_channel:
            # The default prefix on purpose: channels-redis serves all of a process's
            # channels from one receive loop that only reads one prefix at a time, so a
            # channel with another prefix would starve the consumers' channels.
            self.worker_channel = await get_channel_layer().new_channel()
            self._listener = asyncio.create_task(self._listen(), name="chatweb-worker")
        return self.worker_channel

    async def _listen(self) -> None:
        layer = get_channel_layer()
        while True:
            try:
                event = await layer.receive(self.worker_channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("worker channel receive failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            generation = self.generations.get(event.get("message_id"))
            if generation is None:
                continue
            if event["type"] == "generation.stop":
                generation.stop()
            elif event["type"] == "generation.watch":
                await generation.add_remote_watcher(
                    event["reply_channel"], language=event.get("language")
                )
            elif event["type"] == "generation.unwatch":
                generation.remote_watchers.pop(event["reply_channel"], None)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """Return the hub of the running event loop (one per process under Daphne)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
        # The process has just started serving: settle what a dead one left behind,
        # and keep doing so while it serves.
        spawn(keep_recovering())
    return hub
