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
  watcher; a new conversation is then named by a task of its own (`titles`).

Its parts each live in their own module: `adaptation` (requests the gateway accepts),
`toolrounds` (running tools, paying for each round) and `fanout` (rendering and
delivering fragments). This one drives them and owns the answer's start and end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from functools import partial

from django.conf import settings
from django.db import DatabaseError
from django.utils import translation

from conversations.catalogue.upstream import get_client
from conversations.gateway.errors import GatewayError
from conversations.gateway.request import function_call_output
from conversations.pipeline import broadcast, endings, fragments
from conversations.pipeline.adaptation import GatewayAdaptation, RestartWithHistory
from conversations.pipeline.answer import AnswerState, Outcome
from conversations.pipeline.checkpoints import HEARTBEAT_SECONDS, ensure_checkpoints
from conversations.pipeline.dbthreads import in_database_thread
from conversations.pipeline.fanout import FanOut
from conversations.pipeline.live import Fragment, get_hub, spawn
from conversations.pipeline.plans import TurnPlan
from conversations.pipeline.titles import name_conversation
from conversations.pipeline.toolrounds import QUOTA_STOPPED_TOOLS, plan_next_round, run_tool_call
from conversations.rendering.streaming import StreamingMarkdown

logger = logging.getLogger(__name__)

__all__ = ["Generation"]

FINAL_SAVE_RETRY_SECONDS = 0.5

# The words recovery uses for an answer its process left behind (rendering/errortext.py).
INTERRUPTED_BY_SHUTDOWN = Outcome(
    "interrupted", "The server restarted while this answer was being written.", "interrupted"
)


class InternalError(GatewayError):
    default_user_message = "Something went wrong while generating this answer."


class Generation(GatewayAdaptation, FanOut):
    """One answer, from its first request to its final save."""

    def __init__(self, plan: TurnPlan) -> None:
        self.plan = plan
        self.message_id = plan.answer_id
        self.state = AnswerState()
        self._hub = get_hub()
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task | None = None
        self._stop_requested = False
        self._interrupted = False
        self._checkpointed_length = 0
        self._checkpointed_at = time.monotonic()
        # What the gateway taught us during this turn (GatewayAdaptation). The response
        # this answer continued from: the plan's, until a replay drops it.
        self.previous_id = plan.previous_id
        # Continue upstream with previous_response_id, unless the model replays or the
        # gateway lost the chain during this turn.
        self.continue_upstream = not plan.replay
        # Request fields the gateway rejected during this turn, and notes for the bubble.
        self.dropped: set[str] = set()
        self.notes: list[dict] = []
        self.turns_left_out = 0
        self._replay: list[dict] | None = None
        # Rendering and delivery (FanOut).
        self.renderer = StreamingMarkdown()
        self.seq = 0
        # The language of the tab that started the turn; watchers may read others.
        self.language = translation.get_language() or settings.LANGUAGE_CODE
        # Other processes watching: their hub's channel -> the languages read there.
        self.remote_watchers: dict[str, set[str]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushed_at = 0.0
        self._remote_handle: asyncio.TimerHandle | None = None
        self._remote_batch: list[Fragment] = []
        self._remote_sending: asyncio.Task | None = None

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

        Called when a deploy's grace period runs out (pipeline/shutdown.py): the
        answer is saved as interrupted at once, not left for recovery to find 30 s later.
        """
        if not self._stop_requested:
            self._interrupted = True
            self.stop()

    async def finished(self) -> None:
        """Wait until the generation has ended and said so (not for its title: see `_finish`)."""
        if self._task is not None:
            await asyncio.wait([self._task])

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
        following = await plan_next_round(self.plan, self.state, outputs)
        if following is None:
            # Every round so far is charged; the final save has nothing left to settle.
            self.plan = replace(self.plan, reservation=None)
            return False
        self.plan = following
        return True

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
            shown = await self._save_final()
        except Exception as cause:
            logger.error(
                "could not save the end of answer %s; keeping its text",
                self.message_id,
                exc_info=cause,
            )
            try:
                save = in_database_thread(endings.save_answer_text)
                shown = await save(self.plan, self.state, cause=cause)
            except Exception:
                logger.exception("could not save even the text of answer %s", self.message_id)
                self._hub.unregister(self)
                return
        self.seq += 1
        html, translations = self._in_each_language(
            partial(fragments.message_html, shown, staff=self.plan.owner_is_staff)
        )
        self._publish(
            Fragment(self.message_id, self.seq, html, final=True, translations=translations)
        )
        self._hub.unregister(self)
        # The final bubble first: a process that relays the answer hears `turn_finished`
        # after it, instead of every socket there reading the answer from the database.
        await self.remote_sent()
        await broadcast.turn_finished(self.plan.conversation_id, answer_id=self.message_id)
        if self.plan.needs_title and shown.message.status == shown.message.Status.COMPLETE:
            # A task of its own: the answer is over, and a slow title model must keep
            # neither it nor a deploy's drain (which waits for generations) waiting.
            spawn(name_conversation(self.plan, self.state.text))

    async def _save_final(self):
        save = in_database_thread(endings.finish_answer)
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
        notes = [*self.notes, *self.plan.file_notes]
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
