"""How an answer's progress reaches the people watching it, here and in other processes.

Rendering is the costly part of streaming, and watchers are many, so it is done as
little as possible: every ~50 ms (stretched when the process streams many answers) what
arrived since the last flush is rendered once, finished Markdown blocks once plus the
open tail, and handed to local watchers directly (`live.Hub`). Watchers in other
processes get the same fragments coalesced to a few channel-layer messages a second. A
fragment with words in it (notices, copy buttons, the final bubble) is rendered once per
language its watchers read, not once per watcher.

`FanOut` is a part of `Generation` (conversations/pipeline/generation.py), kept apart
because it is its own job; it reads the generation's `message_id`, `state`, `renderer`,
`language`, `seq`, `remote_watchers`, `_hub` and `_loop` and the flush bookkeeping the
generation sets up (`_flush_handle`, `_flushed_at`, `_remote_handle`, `_remote_batch`).
"""

from __future__ import annotations

from collections.abc import Callable
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

    def snapshot(self, language: str | None = None) -> Fragment:
        """Return the body so far: for one watcher attaching mid-stream in `language`,
        or, without one, for every watcher (when the answer starts again)."""
        self._flush()
        render = partial(
            fragments.live_body_html,
            self.message_id,
            self.renderer.blocks_html(),
            self.renderer.tail_html(),
            extras=fragments.live_extras(self.state, answer_started=bool(self.state.text)),
        )
        if language is not None:
            with translation.override(language):
                return Fragment(self.message_id, self.seq, render(), snapshot=True)
        html, translations = self._in_each_language(render)
        return Fragment(self.message_id, self.seq, html, snapshot=True, translations=translations)

    async def add_remote_watcher(self, channel: str, *, language: str | None = None) -> None:
        """Feed a watcher in another process, in its language (ours if it did not say)."""
        language = language or self.language
        # Snapshot first: its flush must not reach the new watcher ahead of the snapshot.
        snapshot = self.snapshot(language)
        self.remote_watchers[channel] = language
        await broadcast.send_to_channel(channel, live_fragment_event([snapshot], language))

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

    def _in_each_language(self, render: Callable[[], str]) -> tuple[str, dict[str, str] | None]:
        """Return `render()` in our language and, by language, in the others watchers read.

        One render per language, not per watcher: usually every watcher reads ours.
        """
        with translation.override(self.language):
            html = render()
        others = self._hub.languages(self.message_id)
        others.update(self.remote_watchers.values())
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
        """Send the fragments gathered for other processes as one message per watcher,
        built once per language they read."""
        self._remote_handle = None
        if not self._remote_batch:
            return
        batch, self._remote_batch = self._remote_batch, []
        events: dict[str, dict] = {}
        for channel, language in tuple(self.remote_watchers.items()):
            if language not in events:
                events[language] = live_fragment_event(batch, language)
            spawn(self._send_or_forget(channel, events[language]))

    async def _send_or_forget(self, channel: str, event: dict) -> None:
        if not await broadcast.send_to_channel(channel, event):
            # A watcher that fell behind asks again and gets a fresh snapshot.
            self.remote_watchers.pop(channel, None)


def live_fragment_event(batch: list[Fragment], language: str) -> dict:
    """Return the channel-layer event that carries fragments, in `language`, to another
    process.

    Each fragment keeps its own sequence number, so a watcher that joined mid-batch
    skips what its snapshot already holds instead of taking the batch for a gap.
    """
    return {
        "type": "live.fragment",
        "message_id": batch[0].message_id,
        "fragments": [[f.seq, f.html_for(language), f.snapshot, f.final] for f in batch],
    }
