"""How an answer's progress reaches the people watching it, here and in other processes.

Rendering is the costly part of streaming, and watchers are many, so it is done as
little as possible: every ~50 ms (stretched when the process streams many answers) what
arrived since the last flush is rendered once, finished Markdown blocks once plus the
open tail, and handed to local watchers directly (`live.Hub`). Another process whose
sockets watch the answer gets the same fragments coalesced every 200 ms into one
channel-layer message for the whole process (its hub relays them to its sockets), not
one per socket. A fragment with words in it (notices, copy buttons, the final bubble) is
rendered once per language its watchers read, here or there, not once per watcher; each
process is sent the languages its watchers read, and only those.

`FanOut` is a part of `Generation` (conversations/pipeline/generation.py), kept apart
because it is its own job; it reads the generation's `message_id`, `state`, `renderer`,
`language`, `seq`, `remote_watchers`, `_hub` and `_loop` and the flush bookkeeping the
generation sets up (`_flush_handle`, `_flushed_at`, `_remote_handle`, `_remote_batch`,
`_remote_sending`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from functools import partial

from django.utils import translation

from conversations.pipeline import broadcast, fragments
from conversations.pipeline.live import Fragment, spawn

__all__ = ["FanOut", "live_fragment_event"]

FLUSH_SECONDS = 0.05
MAX_FLUSH_SECONDS = 0.15
STREAMS_PER_FLUSH_STEP = 100
REMOTE_FLUSH_SECONDS = 0.2


class FanOut:
    """Render what an answer gained since the last flush and hand it to every watcher."""

    def snapshot(
        self, language: str | None = None, *, languages: Collection[str] | None = None
    ) -> Fragment:
        """Return the body so far: for one watcher attaching mid-stream in `language`,
        for another process whose watchers read `languages`, or, with neither, for every
        watcher (when the answer starts again)."""
        self._flush()
        render = partial(
            fragments.live_body_html,
            self.message_id,
            self.renderer.blocks_html(),
            self.renderer.tail_html(),
            extras=fragments.live_extras(self.state, answer_started=bool(self.state.text)),
        )
        if languages is not None and len(languages) == 1:
            (language,) = languages
        if language is not None:
            with translation.override(language):
                return Fragment(self.message_id, self.seq, render(), snapshot=True)
        html, translations = self._in_each_language(render, languages)
        return Fragment(self.message_id, self.seq, html, snapshot=True, translations=translations)

    async def add_remote_watcher(self, channel: str, *, languages: Collection[str] = ()) -> None:
        """Feed another process's hub on `channel`, in the languages its watchers read
        (ours if it did not say), starting with a snapshot in each of them.

        Asked again (a new watcher or language there, or one that missed a fragment),
        it sends a fresh snapshot, and the languages asked for replace the earlier ones.
        """
        wanted = set(languages) or {self.language}
        # Snapshot first: its flush must not reach the process ahead of the snapshot.
        snapshot = self.snapshot(languages=wanted)
        self.remote_watchers[channel] = wanted
        await broadcast.send_to_channel(
            channel, live_fragment_event([snapshot], wanted, reply=True)
        )

    def _schedule_flush(self) -> None:
        """Flush soon after new text or extras, coalescing what arrives meanwhile."""
        if self._flush_handle is None and (self.state.has_pending or self.state.extras_changed):
            delay = max(0.0, self._flushed_at + self._flush_interval() - self._loop.time())
            self._flush_handle = self._loop.call_later(delay, self._flush)

    def _flush_interval(self) -> float:
        """Return ~50 ms, stretched when this process streams many answers at once.

        Each flush re-renders the answer's open Markdown block, a fixed cost of about
        0.1 ms. Past a hundred concurrent answers the process would spend its time on
        that; coalescing a little more keeps every stream moving instead.
        """
        busy = len(self._hub.generations) / STREAMS_PER_FLUSH_STEP
        return min(FLUSH_SECONDS * max(1.0, busy), MAX_FLUSH_SECONDS)

    def _flush(self) -> None:
        """Render what arrived since the last flush and hand it to watchers."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        update = self.renderer.feed(self.state.take_pending())
        extras = None
        if self.state.take_extras_changed():
            extras = fragments.live_extras(self.state, answer_started=bool(self.state.text))
        if update.is_empty and extras is None:
            return
        self.seq += 1
        self._flushed_at = self._loop.time()
        tail = update.tail_html if update.tail_changed else None
        render = partial(
            fragments.delta_html, self.message_id, update.appended_html, tail, extras=extras
        )
        if extras is None:
            # Only Markdown, the same in every language: one render (the usual delta).
            html, translations = render(), None
        else:
            html, translations = self._in_each_language(render)
        self._publish(Fragment(self.message_id, self.seq, html, translations=translations))

    def _in_each_language(
        self, render: Callable[[], str], languages: Collection[str] | None = None
    ) -> tuple[str, dict[str, str] | None]:
        """Return `render()` in our language and, by language, in the others watchers read
        (or in `languages`).

        One render per language, not per watcher: usually every watcher reads ours.
        """
        with translation.override(self.language):
            html = render()
        if languages is not None:
            others = set(languages)
        else:
            others = self._hub.languages(self.message_id)
            others.update(*self.remote_watchers.values())
        others.discard(self.language)
        if not others:
            return html, None
        translations = {}
        for language in others:
            with translation.override(language):
                translations[language] = render()
        return html, translations

    def _publish(self, fragment: Fragment) -> None:
        self._hub.publish(fragment)
        if not self.remote_watchers:
            return
        self._remote_batch.append(fragment)
        if fragment.final:
            self._send_remote()
        elif self._remote_handle is None:
            self._remote_handle = self._loop.call_later(REMOTE_FLUSH_SECONDS, self._send_remote)

    def _send_remote(self) -> None:
        """Send the fragments gathered for other processes: one message per process (its
        hub's channel), whatever the number of its watchers, built once per set of
        languages."""
        self._remote_handle = None
        if not self._remote_batch:
            return
        batch, self._remote_batch = self._remote_batch, []
        events: dict[frozenset[str], dict] = {}
        sends = []
        for channel, languages in tuple(self.remote_watchers.items()):
            key = frozenset(languages)
            if key not in events:
                events[key] = live_fragment_event(batch, key)
            sends.append((channel, events[key]))
        self._remote_sending = spawn(self._send_after(self._remote_sending, sends))

    async def _send_after(
        self, previous: asyncio.Task | None, sends: list[tuple[str, dict]]
    ) -> None:
        """Send one flush's messages once the flush before it has gone.

        A send to Redis takes several round trips: two flushes sent at once could arrive
        the other way round, and the final bubble overtake the last words.
        """
        if previous is not None:
            await asyncio.wait([previous])
        await asyncio.gather(*(self._send_or_forget(channel, event) for channel, event in sends))

    async def remote_sent(self) -> None:
        """Wait until the messages for other processes have gone (the final bubble, before
        `turn_finished` tells their sockets the answer is over)."""
        if self._remote_sending is not None:
            await asyncio.wait([self._remote_sending])

    async def _send_or_forget(self, channel: str, event: dict) -> None:
        if not await broadcast.send_to_channel(channel, event):
            # A process that fell behind asks again and gets a fresh snapshot.
            self.remote_watchers.pop(channel, None)


def live_fragment_event(
    batch: list[Fragment], languages: Collection[str], *, reply: bool = False
) -> dict:
    """Return the channel-layer event that carries fragments to another process's hub,
    in the `languages` its watchers read; `reply` marks the snapshot a watch asked for
    (for the watchers there that wait for one, not all of them).

    Each fragment keeps its own sequence number, so a watcher that joined mid-batch
    skips what its snapshot already holds instead of taking the batch for a gap. Its
    html is one string when it reads the same in all those languages (plain deltas, or
    a single language), else a dict language -> html; `languages` says which ones the
    message carries, so a watcher waiting for a snapshot in another one keeps waiting.
    """
    ordered = sorted(languages)
    return {
        "type": "live.fragment",
        "message_id": batch[0].message_id,
        "languages": ordered,
        "reply": reply,
        "fragments": [[f.seq, _html_in(f, ordered), f.snapshot, f.final] for f in batch],
    }


def _html_in(fragment: Fragment, languages: list[str]) -> str | dict[str, str]:
    """Return the fragment's html for readers of `languages`: one string if it is the same
    for all of them, else by language."""
    if fragment.translations is None or len(languages) == 1:
        return fragment.html_for(languages[0])
    return {language: fragment.html_for(language) for language in languages}
