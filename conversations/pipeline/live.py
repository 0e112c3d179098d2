"""The running generations of this process and the sockets watching them.

A generation belongs to no socket: it registers here, and any consumer in the same
process that shows its conversation attaches as a watcher and receives fragments
straight from it, in order, with no channel-layer hop. Watchers in other processes reach
it through this process's worker channel (`generation.watch`, `generation.stop`), which
the hub listens on.

Watchers of an answer generated in another process do not each ask that process for
it: the hub relays it (`Relay`). It asks once, with its own worker channel as the reply
channel, and the generating process sends one `live.fragment` message per flush to this
process, whatever the number of sockets here; the hub hands each fragment to its local
watchers as a local generation would. With twenty people in a conversation spread over
two processes, that is one channel-layer message every 200 ms, not ten.

Each fragment carries a sequence number. A watcher attaching mid-stream first receives
a snapshot (the whole body so far, at sequence N) and then only fragments after N, so
the page shows no gap and no duplicate. A relayed watcher that misses a fragment waits
for a fresh snapshot, which the hub asks for once for all of them.

Each watcher reads its own language. The Markdown is the same for all of them, but the
notices beside it ("Thinking…", "Searching the web…"), code copy buttons and the final
bubble are words: a fragment that carries them is rendered once per language its
watchers read, and each watcher takes its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from channels.layers import get_channel_layer

from conversations.pipeline.startup import keep_recovering

logger = logging.getLogger(__name__)

__all__ = [
    "AWAITING_SNAPSHOT",
    "Fragment",
    "Hub",
    "Relay",
    "Running",
    "Watcher",
    "get_hub",
    "spawn",
]

# The sequence number of a watcher that has applied nothing yet: it takes no delta
# before its first snapshot.
AWAITING_SNAPSHOT = -1
# A snapshot asked for and not received after this long is asked for again, when a
# watcher waits for one: the request reached the process before the generation started
# there (a watch in the instant between the turn's save and its start), or was lost.
SNAPSHOT_WAIT_SECONDS = 2.0

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
    # Other processes watching: the hub's reply channel -> the languages its watchers read.
    remote_watchers: dict[str, set[str]]

    def snapshot(self, language: str | None = None) -> Fragment:
        """Return the body so far, for a watcher attaching mid-stream."""

    async def add_remote_watcher(self, channel: str, *, languages: Collection[str] = ()) -> None:
        """Feed another process's hub, in the languages its watchers read; send it a snapshot."""

    def stop(self) -> None:
        """Stop the stream, keeping the answer so far (the Stop button)."""

    def interrupt(self) -> None:
        """End the stream because the process is shutting down (`shutdown.drain`)."""

    async def finished(self) -> None:
        """Wait until the answer has ended."""

    def checkpoint_due(self, now: float) -> str | None:
        """Return the text to checkpoint now, or None (`checkpoints`)."""


@dataclass(eq=False)
class Relay:
    """An answer generated in another process, relayed to this process's watchers.

    It keeps, per watcher, the sequence number it last handed over, so that a watcher
    that joins gets a snapshot before any delta, and one that misses a delta waits for
    a fresh snapshot instead of showing a hole. The consumer filters again by its own
    numbers (`ChatConsumer.apply`); this bookkeeping is what lets the hub ask the
    generating process for a snapshot once for all its watchers, not once per socket.
    """

    message_id: int
    owner: str  # the worker channel of the process generating the answer
    # Local watchers -> the sequence number last handed to each (or AWAITING_SNAPSHOT).
    watchers: dict[Watcher, int] = field(default_factory=dict)
    # The languages of snapshots asked for and not received yet, and when they were.
    pending: set[str] = field(default_factory=set)
    asked_at: float = 0.0

    def languages(self) -> set[str]:
        return {watcher.language for watcher in self.watchers}

    def needs_snapshot(self) -> bool:
        """True when a watcher waits for a snapshot in a language not yet asked for (or
        asked for too long ago)."""
        pending = self.pending
        if time.monotonic() - self.asked_at > SNAPSHOT_WAIT_SECONDS:
            pending = set()
        return any(
            last == AWAITING_SNAPSHOT and watcher.language not in pending
            for watcher, last in self.watchers.items()
        )

    def take(
        self, fragment: Fragment, languages: Collection[str] | None, *, reply: bool = False
    ) -> None:
        """Hand `fragment` to the watchers it continues.

        `languages` are those the message carries (None from a process that does not
        say: then it is taken as everyone's); `reply` marks the snapshot a watch asked
        for, as opposed to one the generation published to all its watchers.
        """
        if fragment.snapshot:
            self._take_snapshot(fragment, languages, reply)
        else:
            self._take_delta(fragment)

    def _take_delta(self, fragment: Fragment) -> None:
        """Hand a delta to the watchers holding the fragment before it; one that missed
        a fragment waits for a snapshot again."""
        for watcher, last in tuple(self.watchers.items()):
            if last == AWAITING_SNAPSHOT or fragment.seq <= last:
                continue
            if fragment.seq > last + 1:
                self.watchers[watcher] = AWAITING_SNAPSHOT
                continue
            # Noted before delivering: a watcher may leave the relay while it takes it.
            self.watchers[watcher] = fragment.seq
            watcher.deliver(fragment)

    def _take_snapshot(
        self, fragment: Fragment, languages: Collection[str] | None, reply: bool
    ) -> None:
        """Hand a snapshot to the watchers it is for.

        One asked for goes to the watchers waiting for a snapshot only: the others
        already hold the body, and the deltas after it reach them anyway. One the
        generation published (the answer started over) replaces every watcher's body,
        unless a watcher is already past it. A watcher whose language it lacks waits
        for one in its own.
        """
        self.pending.difference_update(languages if languages is not None else self.pending)
        for watcher, last in tuple(self.watchers.items()):
            if (reply and last != AWAITING_SNAPSHOT) or fragment.seq < last:
                continue
            if not reads(watcher, languages):
                self.watchers[watcher] = AWAITING_SNAPSHOT
                continue
            self.watchers[watcher] = fragment.seq
            watcher.deliver(fragment)

    def finish(self, fragment: Fragment, languages: Collection[str] | None) -> None:
        """Hand the final bubble to every watcher it is written for, waiting or not.

        A watcher whose language it lacks gets nothing: the consumer re-reads the final
        answer in its own language when `turn_finished` arrives.
        """
        for watcher in tuple(self.watchers):
            if reads(watcher, languages):
                watcher.deliver(fragment)


def reads(watcher: Watcher, languages: Collection[str] | None) -> bool:
    """True if a relayed message in `languages` (None: unsaid) is written for `watcher`."""
    return languages is None or watcher.language in languages


def relayed_fragment(message_id: int, entry: list) -> Fragment:
    """Return a fragment of a `live.fragment` message (see `fanout.live_fragment_event`).

    Its html is one string when it reads the same in every language it was sent in,
    else a dict language -> html.
    """
    seq, html, snapshot, final = entry
    if isinstance(html, dict):
        return Fragment(message_id, seq, next(iter(html.values())), snapshot, final, html)
    return Fragment(message_id, seq, html, snapshot, final)


def watch_request(
    kind: str, message_id: int, reply_channel: str, languages: Collection[str] = ()
) -> dict:
    """Return a `generation.watch`/`unwatch` request from this process's hub.

    `language` (one of them) is for a generating process that reads only that field.
    """
    event = {"type": kind, "message_id": message_id, "reply_channel": reply_channel}
    if languages:
        event["languages"] = sorted(languages)
        event["language"] = event["languages"][0]
    return event


class Hub:
    """Running generations and local watchers, for one process (one event loop)."""

    def __init__(self) -> None:
        self.generations: dict[int, Running] = {}
        self.watchers: dict[int, set[Watcher]] = defaultdict(set)
        # Answers generated in other processes that watchers here follow.
        self.relays: dict[int, Relay] = {}
        self.worker_channel: str = ""
        self._listener: asyncio.Task | None = None
        self._sender: asyncio.Task | None = None
        self._requests: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
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
        """Stop feeding `watcher` anything, from here or from other processes."""
        for watchers in self.watchers.values():
            watchers.discard(watcher)
        self.unfollow_remote(watcher)

    def languages(self, message_id: int) -> set[str]:
        """Return the languages the local watchers of an answer read."""
        return {watcher.language for watcher in self.watchers.get(message_id, ())}

    def publish(self, fragment: Fragment) -> None:
        for watcher in tuple(self.watchers.get(fragment.message_id, ())):
            watcher.deliver(fragment)

    # --- Answers generated in other processes ---------------------------------------

    async def follow_remote(self, message_id: int, owner: str, watcher: Watcher) -> None:
        """Relay to `watcher` the answer that the process on channel `owner` generates.

        The first watcher of an answer makes the hub ask that process to feed this one;
        later ones share the feed, and ask it for a fresh snapshot only when no snapshot
        in their language is on its way already.
        """
        await self.ensure_worker_channel()
        relay = self.relays.get(message_id)
        if relay is None:
            relay = self.relays[message_id] = Relay(message_id, owner)
        relay.watchers[watcher] = AWAITING_SNAPSHOT
        if relay.needs_snapshot():
            self._ask_for_snapshot(relay)

    def unfollow_remote(self, watcher: Watcher, message_id: int | None = None) -> None:
        """Stop relaying to `watcher` (one answer, or all); the last watcher of an answer
        to leave tells its process to stop sending."""
        if message_id is None:
            relays = list(self.relays.values())
        else:
            relays = [self.relays[message_id]] if message_id in self.relays else []
        for relay in relays:
            if relay.watchers.pop(watcher, None) is not None and not relay.watchers:
                del self.relays[relay.message_id]
                self._request(
                    relay.owner,
                    watch_request("generation.unwatch", relay.message_id, self.worker_channel),
                )

    def _ask_for_snapshot(self, relay: Relay) -> None:
        """Ask the generating process for a snapshot in every language read here; it
        feeds this process from then on."""
        relay.pending, relay.asked_at = relay.languages(), time.monotonic()
        self._request(
            relay.owner,
            watch_request("generation.watch", relay.message_id, self.worker_channel, relay.pending),
        )

    def _relay(self, event: dict) -> None:
        """Hand the fragments of a `live.fragment` message to the local watchers."""
        relay = self.relays.get(event.get("message_id"))
        if relay is None:
            return
        languages = event.get("languages")
        for entry in event["fragments"]:
            fragment = relayed_fragment(relay.message_id, entry)
            if fragment.final:
                # The answer has ended and its process has forgotten us: nothing to unwatch.
                del self.relays[relay.message_id]
                relay.finish(fragment, languages)
                return
            relay.take(fragment, languages, reply=event.get("reply", False))
        if relay.watchers and relay.needs_snapshot():
            self._ask_for_snapshot(relay)

    def _request(self, channel: str, event: dict) -> None:
        """Send a request to another process's hub, after those queued before it.

        One at a time, in order: a watch must not overtake the unwatch before it, or
        the generating process would stop feeding a relay that has watchers again.
        """
        self._requests.put_nowait((channel, event))

    async def _send_requests(self) -> None:
        layer = get_channel_layer()
        while True:
            channel, event = await self._requests.get()
            try:
                await layer.send(channel, event)
            except Exception:
                logger.warning("could not send %s to %s", event["type"], channel, exc_info=True)

    # --- This process's worker channel ------------------------------------------------

    async def ensure_worker_channel(self) -> str:
        """Return this process's channel for generation requests, listening on it."""
        if not self.worker_channel:
            # The default prefix on purpose: channels-redis serves all of a process's
            # channels from one receive loop that only reads one prefix at a time, so a
            # channel with another prefix would starve the consumers' channels.
            self.worker_channel = await get_channel_layer().new_channel()
            self._listener = asyncio.create_task(self._listen(), name="chatweb-worker")
            self._sender = asyncio.create_task(self._send_requests(), name="chatweb-requests")
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
            try:
                if event["type"] == "live.fragment":
                    self._relay(event)
                else:
                    await self._serve(event)
            except Exception:
                # One bad message must not stop the process hearing the next ones.
                logger.exception("could not handle %s on the worker channel", event.get("type"))

    async def _serve(self, event: dict) -> None:
        """Answer another process's request about a generation running here."""
        generation = self.generations.get(event.get("message_id"))
        if generation is None:
            return
        if event["type"] == "generation.stop":
            generation.stop()
        elif event["type"] == "generation.watch":
            # `language` alone: from a process that asks for one language at a time.
            languages = event.get("languages") or [event.get("language")]
            await generation.add_remote_watcher(
                event["reply_channel"], languages=[language for language in languages if language]
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
