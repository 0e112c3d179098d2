"""One answer being generated: drive the gateway stream, fan out, checkpoint, finish.

A `Generation` runs as its own asyncio task, owned by no socket: closing the tab does
not stop it, only `stop()` (the Stop button, from any process) or the end of the
stream does. While it runs it

- folds each gateway event into an `AnswerState`;
- every ~50 ms renders what changed (finished Markdown blocks once, plus the open tail)
  and hands the fragment to local watchers directly and, coalesced to a few messages a
  second, to watchers in other processes through the channel layer; a fragment with
  words in it (notices, the final bubble) is rendered once per language read;
- offers its text so far to the process's checkpoints, which write every running
  answer once a second in one transaction (see `checkpoints`);
- at the end writes the answer once, publishes the final rendering and tells every
  watcher.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import replace
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.utils import translation

from conversations.catalogue.upstream import get_client
from conversations.gateway import events
from conversations.gateway.errors import (
    GatewayError,
    PreviousResponseNotFoundError,
    UnsupportedParameterError,
)
from conversations.gateway.request import ResponseRequest, function_call_output
from conversations.gateway.response import Usage
from conversations.pipeline import broadcast, fragments, records
from conversations.pipeline.answer import AnswerState, Outcome
from conversations.pipeline.checkpoints import HEARTBEAT_SECONDS, ensure_checkpoints
from conversations.pipeline.dbthreads import in_database_thread
from conversations.pipeline.live import Fragment, get_hub, spawn
from conversations.pipeline.plans import DROPPABLE_PARAMS, TurnPlan
from conversations.pipeline.titles import generate_title
from conversations.rendering.markdown import StreamingMarkdown
from conversations.tools import REGISTRY, ToolContext, run_call

logger = logging.getLogger(__name__)

__all__ = ["Generation"]

FLUSH_SECONDS = 0.05
MAX_FLUSH_SECONDS = 0.15
STREAMS_PER_FLUSH_STEP = 100
REMOTE_FLUSH_SECONDS = 0.2
FINAL_SAVE_RETRY_SECONDS = 0.5
# Why a tool-calling answer ended early, stored in English (conversations/errortext.py).
QUOTA_STOPPED_TOOLS = (
    "Stopped: too little of your token quota is left to send the tool results back to the model."
)


# The words recovery uses for an answer its process left behind (conversations/errortext.py).
INTERRUPTED_BY_SHUTDOWN = Outcome(
    "interrupted", "The server restarted while this answer was being written.", "interrupted"
)


class InternalError(GatewayError):
    default_user_message = "Something went wrong while generating this answer."


class Generation:
    def __init__(self, plan: TurnPlan) -> None:
        self.plan = plan
        self.message_id = plan.answer_id
        self.state = AnswerState()
        self.renderer = StreamingMarkdown()
        self.seq = 0
        # The language of the tab that started the turn; watchers may read others.
        self.language = translation.get_language() or settings.LANGUAGE_CODE
        # Watchers in other processes: reply channel -> the language they read.
        self.remote_watchers: dict[str, str] = {}
        # The response this answer continued from: the plan's, until a replay drops it.
        self.previous_id = plan.previous_id
        self._hub = get_hub()
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task | None = None
        self._stop_requested = False
        self._interrupted = False
        self._replay: list[dict] | None = None
        # Continue upstream with previous_response_id, unless the model replays or the
        # gateway lost the chain during this turn.
        self.continue_upstream = not plan.replay
        # Request fields the gateway rejected during this turn, and notes for the bubble.
        self.dropped: set[str] = set()
        self.notes: list[dict] = []
        self.turns_left_out = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushed_at = 0.0
        self._remote_handle: asyncio.TimerHandle | None = None
        self._remote_batch: list[Fragment] = []
        self._checkpointed_length = 0
        self._checkpointed_at = time.monotonic()

    # --- Control ------------------------------------------------------------------------

    def launch(self) -> asyncio.Task:
        """Start generating in the background; the hub keeps the task alive."""
        self._hub.register(self)
        ensure_checkpoints(self._hub)
        self._task = asyncio.create_task(self.run(), name=f"generation-{self.message_id}")
        return self._task

    def stop(self) -> None:
        """Stop the stream; the partial answer is kept and marked as stopped."""
        if self._task is not None and not self._task.done() and not self._stop_requested:
            self._stop_requested = True
            self._task.cancel()

    def interrupt(self) -> None:
        """End the stream because this process is shutting down; the text so far is kept.

        Called when a deploy's grace period runs out (conversations/shutdown.py): the
        answer is saved as interrupted at once, not left for recovery to find 30 s later.
        """
        if not self._stop_requested:
            self._interrupted = True
            self.stop()

    async def finished(self) -> None:
        """Wait until the generation has ended and said so (its title included)."""
        if self._task is not None:
            await asyncio.wait([self._task])

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

    # --- The stream ---------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._generate()
        except asyncio.CancelledError:
            if not self._stop_requested:
                # The process is shutting down: leave the checkpoint for recovery.
                self._hub.unregister(self)
                raise
            if self._interrupted and not self.state.finished:
                self.state.outcome = INTERRUPTED_BY_SHUTDOWN
            else:
                self.state.cancel()
        except GatewayError as error:
            self.state.fail(error)
        except Exception:
            logger.exception("generation %s failed", self.message_id)
            self.state.fail(InternalError("unexpected error"))
        await self._finish()

    async def _generate(self) -> None:
        """Answer the turn; once, from the start with the history, if the gateway forgot it."""
        client = get_client()
        try:
            await self._turn(client)
        except RestartWithHistory:
            # Words already shown were written without the conversation: replace them.
            self.state = AnswerState(discarded_usages=self.state.all_usages)
            self.renderer = StreamingMarkdown()
            self.notes.append({"code": "resent_with_history"})
            self._publish(self.snapshot())
            await self._turn(client)

    async def _turn(self, client) -> None:
        """Stream the answer, running the tools it asks for, while rounds and quota allow.

        Each request with tool results is billed for everything before it, so every
        round is charged when it ends and the next one reserves from what is left: a
        model that keeps calling tools gets ever smaller output caps and is stopped
        when nothing is left. `CHAT_MAX_TOOL_ROUNDS` bounds the rounds whatever the quota.
        """
        await self._respond(client, self._first_request)
        rounds = 0
        most = settings.CHAT_MAX_TOOL_ROUNDS
        while calls := self.state.pending_calls:
            if rounds >= most:
                self.state.outcome = Outcome(
                    "incomplete",
                    # Stored in English, translated when shown (errortext.TOOL_ROUNDS).
                    f"The model kept calling tools; stopped after {most} "
                    f"{'round' if most == 1 else 'rounds'}.",
                    "tool_rounds",
                )
                return
            rounds += 1
            asked_by = self.state.response_id
            outputs = []
            for call in calls:
                result = await in_database_thread(run_tool_call)(self.plan, call)
                self.state.record_tool_call(call, result)
                outputs.append(function_call_output(call.call_id, result.output))
            self._schedule_flush()
            if not await self._hold_next_round(outputs):
                self.state.outcome = Outcome("incomplete", QUOTA_STOPPED_TOOLS, "quota")
                return
            self.state.next_round()
            await self._respond(client, partial(self._followup_request, outputs, asked_by))

    async def _hold_next_round(self, outputs: list[dict]) -> bool:
        """Charge the rounds so far and hold the next one's cost; False if the quota has
        no room for it. The next request's output cap is what the new hold allows."""
        if self.plan.reservation is None:
            return True
        hold = in_database_thread(records.hold_next_round)
        following = await hold(
            self.plan,
            used_so_far=sum(usage.total_tokens for usage in self.state.all_usages),
            input_estimate=next_round_input(self.plan, self.state, outputs),
        )
        if following is None:
            # Every round so far is charged; the final save has nothing left to settle.
            self.plan = replace(self.plan, reservation=None)
            return False
        self.plan = replace(
            self.plan, reservation=following, max_output_tokens=following.max_output_tokens
        )
        return True

    async def _first_request(self) -> ResponseRequest:
        if self.previous_id:
            return self.plan.request(dropped=self.dropped)
        return self.plan.request(history=await self._history(), dropped=self.dropped)

    async def _followup_request(self, outputs: list[dict], asked_by: str) -> ResponseRequest:
        if self.continue_upstream and asked_by:
            return self.plan.followup(outputs, previous_id=asked_by, dropped=self.dropped)
        # replay_items already end with this round's outputs.
        history = [*await self._history(), *self.state.replay_items]
        return self.plan.followup([], previous_id="", history=history, dropped=self.dropped)

    async def _respond(self, client, build) -> None:
        """Stream one response of the turn, sending it again when the gateway taught us
        something before any of its text: a parameter the model refuses, a chain it
        forgot, or that it keeps no state at all."""
        while True:
            request = await build()
            shown = len(self.state.text)
            expect = request.previous_response_id if self.plan.detect_stateless else None
            try:
                await self._stream(client, request, expect_previous=expect)
            except StatelessGatewayError as stateless:
                await self._replay_from_now_on(stateless)
                continue
            except GatewayError as error:
                if not await self._adapt(error, request):
                    raise
                continue
            error = self.state.error
            if error is None or len(self.state.text) > shown:
                return
            if not await self._adapt(error, request):
                return
            self.state.discard_response()

    async def _adapt(self, error: GatewayError, request: ResponseRequest) -> bool:
        """Change what is sent so the gateway can accept it; False when nothing would help."""
        if isinstance(error, PreviousResponseNotFoundError) and request.previous_response_id:
            # The gateway forgot the chain (expired, another account, store=false): replay
            # the branch for this turn, invisibly to the user.
            logger.info("previous response not found for answer %s; replaying", self.message_id)
            self.continue_upstream = False
            self.previous_id = ""
            return True
        param = getattr(error, "unsupported_param", None)
        if (
            isinstance(error, UnsupportedParameterError)
            and param in DROPPABLE_PARAMS
            and param not in self.dropped
            and sends(request, param)
        ):
            logger.warning(
                "model %s rejected %s; answering without it (%s)",
                self.plan.model,
                param,
                error.detail_for_staff(),
            )
            self.dropped.add(param)
            self.notes.append({"code": "without_param", "param": param})
            await in_database_thread(records.record_unsupported_param)(
                self.plan.model_choice_id, param, error.detail_for_staff()
            )
            return True
        return False

    async def _replay_from_now_on(self, stateless: StatelessGatewayError) -> None:
        """Record that the gateway keeps no state for this model, and replay from now on.

        If any of the answer was shown, it was written without the conversation: the
        whole answer starts again with the history (`_generate`); otherwise only this
        request is sent again.
        """
        logger.warning(
            "model %s: the gateway did not continue from previous_response_id; "
            "replaying history from now on (%s)",
            self.plan.model,
            stateless.evidence,
        )
        await in_database_thread(records.record_stateless_gateway)(
            self.plan.model_choice_id, stateless.evidence
        )
        self.plan = replace(self.plan, replay=True, previous_id="", detect_stateless=False)
        self.continue_upstream = False
        self.previous_id = ""
        shown = bool(self.state.text or self.state.tool_calls)
        if stateless.usage is not None:
            self.state.discarded_usages.append(stateless.usage)
        if shown:
            raise RestartWithHistory
        self.state.discard_response()

    async def _history(self) -> list[dict]:
        """Return the branch as input items (read from the database once, if needed)."""
        if self._replay is None:
            if self.plan.history is not None:
                self._replay = list(self.plan.history)
                self.turns_left_out = self.plan.turns_left_out
            else:
                replay = in_database_thread(records.replay_history)
                self._replay, self.turns_left_out = await replay(self.plan)
        return self._replay

    async def _stream(self, client, request, *, expect_previous: str | None = None) -> None:
        # aclosing: leaving early (stop, terminal event) releases the connection at once.
        async with aclosing(client.stream(request)) as events:
            async for event in events:
                if expect_previous is not None and isinstance(event, ECHOING_EVENTS):
                    check_continued(event.response, expect_previous)
                    expect_previous = None
                self.state.apply(event)
                self._schedule_flush()
                if self.state.finished:
                    break

    # --- Fan-out ------------------------------------------------------------------------

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
        if extras is None and not fragments.has_code_buttons(update.appended_html, tail):
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

    # --- Persistence --------------------------------------------------------------------

    def checkpoint_due(self, now: float) -> str | None:
        """Return the text to checkpoint now, or None: it grew, or a heartbeat is due."""
        grown = len(self.state.text) != self._checkpointed_length
        if not grown and now - self._checkpointed_at < HEARTBEAT_SECONDS:
            return None
        self._checkpointed_length = len(self.state.text)
        self._checkpointed_at = now
        return self.state.text

    async def _finish(self) -> None:
        """Write the answer once, publish its final form, and let everyone know.

        The hub lets go of the generation whatever happens here. If the final write
        fails, a smaller one keeps the text and the usage and marks the answer failed;
        if even that fails (the database is gone), the last checkpoint stays and
        recovery marks the answer interrupted. Errors are logged, never lost in a
        dead task.
        """
        self._flush()
        try:
            message = await self._save_final()
        except Exception as cause:
            logger.error(
                "could not save the end of answer %s; keeping its text",
                self.message_id,
                exc_info=cause,
            )
            try:
                save = in_database_thread(records.save_answer_text)
                message = await save(self.plan, self.state, cause=cause)
            except Exception:
                logger.exception("could not save even the text of answer %s", self.message_id)
                self._hub.unregister(self)
                return
        self.seq += 1
        html, translations = self._in_each_language(
            partial(fragments.message_html, message, staff=self.plan.owner_is_staff)
        )
        self._publish(
            Fragment(self.message_id, self.seq, html, final=True, translations=translations)
        )
        self._hub.unregister(self)
        await broadcast.turn_finished(
            self.plan.user_id, self.plan.conversation_id, answer_id=self.message_id
        )
        if self.plan.needs_title and message.status == message.Status.COMPLETE:
            try:
                await generate_title(self.plan, self.state.text)
            except Exception:
                logger.exception("could not name conversation %s", self.plan.conversation_id)

    async def _save_final(self):
        save = in_database_thread(records.finish_answer)
        notes = self._final_notes()
        try:
            return await save(self.plan, self.state, previous_id=self.previous_id, notes=notes)
        except DatabaseError:
            # One retry on a fresh connection: a restart or failover drops them all.
            logger.warning("final save of %s failed; retrying once", self.message_id)
            await asyncio.sleep(FINAL_SAVE_RETRY_SECONDS)
            return await save(self.plan, self.state, previous_id=self.previous_id, notes=notes)

    def _final_notes(self) -> list[dict]:
        """Return what the bubble says about how the answer was made, beyond its words."""
        notes = list(self.notes)
        if self.turns_left_out:
            notes.append({"code": "turns_left_out", "count": self.turns_left_out})
        finished = self.state.outcome is not None and self.state.outcome.status == "complete"
        if (
            finished
            and self.plan.web_search
            and "tools.web_search" not in self.dropped
            and not self.state.searches
        ):
            notes.append({"code": "no_web_search"})
        return notes


class RestartWithHistory(Exception):
    """Start the answer again, sending the conversation: the gateway had forgotten it."""


class StatelessGatewayError(Exception):
    """The gateway answered without continuing from the previous_response_id it was sent.

    `usage` is what the discarded response cost, when the gateway had said it.
    """

    def __init__(self, evidence: str, usage: Usage | None = None) -> None:
        super().__init__(evidence)
        self.evidence = evidence
        self.usage = usage


# Events that carry the whole response object, previous_response_id included.
ECHOING_EVENTS = (
    events.ResponseCreated,
    events.ResponseInProgress,
    events.ResponseCompleted,
    events.ResponseIncomplete,
)


def check_continued(response, sent: str) -> None:
    """Raise `StatelessGatewayError` unless `response` echoes the previous_response_id sent.

    OpenAI echoes it on every response object; a relay that converts to chat
    completions drops it or puts its own id there, and has not read the earlier turns.
    """
    echoed = response.previous_response_id
    if echoed == sent:
        return
    shown = "nothing" if not echoed else f"{echoed[:80]!r}"
    evidence = (
        f"Sent previous_response_id {sent[:80]!r}{'…' if len(sent) > 80 else ''}; "
        f"the response ({response.id[:80]!r}) echoed {shown}."
    )
    raise StatelessGatewayError(evidence, response.usage)


def sends(request: ResponseRequest, param: str) -> bool:
    """Return whether `request` carries `param` (a `DROPPABLE_PARAMS` name)."""
    body = request.to_body()
    if param == "reasoning.summary":
        return bool(body.get("reasoning", {}).get("summary"))
    if param in ("tools", "tools.web_search"):
        kinds = {tool.get("type") for tool in body.get("tools", ())}
        wanted = (
            {"web_search", "web_search_preview"} if param == "tools.web_search" else {"function"}
        )
        return bool(kinds & wanted)
    return param in body


def next_round_input(plan: TurnPlan, state: AnswerState, outputs: list[dict]) -> int:
    """Return what the request handing back `outputs` will be billed as input, at most.

    It carries everything the last response was billed for, that response's own output
    and the tool results. The first two are the gateway's own counts; the results are
    counted at a token per UTF-8 byte, which no BPE tokenizer exceeds, so the hold is
    never short. Without the gateway's counts, the turn's estimate and everything added
    since stand in for them.
    """
    last = state.usage
    if last is not None:
        return last.input_tokens + last.output_tokens + utf8_bytes(outputs)
    # The turn's output items so far end with these results.
    return plan.input_estimate + utf8_bytes(state.replay_items)


def utf8_bytes(items: list[dict]) -> int:
    return len(json.dumps(items, ensure_ascii=False).encode())


def run_tool_call(plan: TurnPlan, call):
    """Run one function call the model asked for, as the turn's user, never raising."""
    user = get_user_model().objects.get(pk=plan.user_id)
    offered = {name: REGISTRY[name] for name in plan.tools if name in REGISTRY}
    context = ToolContext(user=user, conversation_id=plan.conversation_id)
    return run_call(call.name, call.arguments, context, tools=offered)


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
