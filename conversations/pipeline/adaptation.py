"""Sending an answer's requests so that the gateway in front of the model accepts them.

Gateways differ, and say so only by failing: a model refuses a parameter or a file,
the gateway has forgotten the response chain (expired, another account, store=false),
or a relay keeps no state at all and answers as if the conversation had just begun. Each time the
answer learns it before any of its text was shown, it sends the request again without
what was refused, or with the conversation replayed, and the user never sees the
failure; what it learned is recorded for the model so the next turn starts right.

`GatewayAdaptation` is a part of `Generation` (conversations/pipeline/generation.py),
kept apart because it is its own job; it reads and updates the generation's `plan`,
`state`, `previous_id`, `continue_upstream`, `dropped`, `notes`, `turns_left_out` and
`_replay`, and asks it to `_schedule_flush` after each event.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from dataclasses import replace

from conversations.gateway import events
from conversations.gateway.errors import (
    GatewayError,
    PreviousResponseNotFoundError,
    UnsupportedParameterError,
)
from conversations.gateway.request import ResponseRequest
from conversations.gateway.response import Usage
from conversations.pipeline import endings, starts
from conversations.pipeline.dbthreads import in_database_thread
from conversations.pipeline.plans import DROPPABLE_PARAMS, files_as_text

logger = logging.getLogger(__name__)

__all__ = [
    "GatewayAdaptation",
    "RestartWithHistory",
    "StatelessGatewayError",
    "check_continued",
    "sends",
    "sends_files",
]


class GatewayAdaptation:
    """Build, send and resend the requests of one answer as the gateway allows."""

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
        if param == "input_file" and "input_file" not in self.dropped and sends_files(request):
            await self._send_files_as_text(error)
            return True
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
            await in_database_thread(endings.record_unsupported_param)(
                self.plan.model_choice_id, param, error.detail_for_staff()
            )
            return True
        return False

    async def _send_files_as_text(self, error: GatewayError) -> None:
        """Send the documents as their text from now on: the gateway refused a file.

        Once per answer; the catalogue entry records it, so later turns send text at once.
        """
        logger.warning(
            "model %s rejected input_file; sending the documents as text (%s)",
            self.plan.model,
            error.detail_for_staff(),
        )
        self.dropped.add("input_file")
        self.notes.append({"code": "files_as_text"})
        await in_database_thread(endings.record_unsupported_param)(
            self.plan.model_choice_id, "input_file", error.detail_for_staff()
        )
        self.plan = files_as_text(self.plan)
        # The history, if any, is read again with the files as text.
        self._replay = None

    async def _replay_from_now_on(self, stateless: StatelessGatewayError) -> None:
        """Record that the gateway keeps no state for this model, and replay from now on.

        If any of the answer was shown, it was written without the conversation: the
        whole answer starts again with the history (`Generation._generate`); otherwise only this
        request is sent again.
        """
        logger.warning(
            "model %s: the gateway did not continue from previous_response_id; "
            "replaying history from now on (%s)",
            self.plan.model,
            stateless.evidence,
        )
        await in_database_thread(endings.record_stateless_gateway)(
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
                replay = in_database_thread(starts.replay_history)
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


def sends_files(request: ResponseRequest) -> bool:
    """Return whether `request` carries a file (an `input_file` part)."""
    items = request.input if not isinstance(request.input, str) else ()
    return any(
        isinstance(part, dict) and part.get("type") == "input_file"
        for item in items
        if isinstance(item.get("content"), list)
        for part in item["content"]
    )


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
