"""What one turn will ask the gateway for, decided before the gateway is called.

A `TurnPlan` is plain data built from the database in one place (`records`), so the
generation never touches the ORM to decide what to send, and tests can read exactly
what a turn would request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conversations.gateway.request import Reasoning, ResponseRequest, WebSearchTool
from conversations.quotas import Reservation
from conversations.tools import get_tool, to_function_tool

__all__ = ["TurnOptions", "TurnPlan"]

SUMMARY_MODES = ("auto", "concise", "detailed")


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """The composer's per-message choices, as sent by the page (validated in `records`)."""

    effort: str = ""
    summary: str = ""
    web_search: bool = False
    attachment_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TurnPlan:
    user_id: int
    conversation_id: int
    answer_id: int
    model: str
    model_choice_id: int | None
    instructions: str
    store: bool
    # The branch's last answer to continue from; empty when the history is replayed.
    previous_id: str
    # Only the new user input, sent with previous_id.
    new_input: tuple[dict[str, Any], ...]
    # The whole branch as input items: built up front only when there is no previous_id;
    # otherwise `records.replay_history` builds it if the gateway forgot the chain.
    history: tuple[dict[str, Any], ...] | None = None
    max_output_tokens: int | None = None
    reasoning_effort: str = ""
    reasoning_summary: str = ""
    reasoning_model: bool = False
    tools: tuple[str, ...] = ()
    web_search: bool = False
    needs_title: bool = False
    first_user_text: str = ""
    user_message_id: int | None = None
    notices: tuple[str, ...] = field(default=())
    # Tokens the history and instructions amount to, for estimates when usage is missing.
    input_estimate: int = 0
    reservation: Reservation | None = None

    def request(self, *, history: Sequence[dict] | None = None) -> ResponseRequest:
        """Return the streaming request: continue from `previous_id`, or send `history`."""
        if history is None and self.previous_id:
            return self._request(self.new_input, previous_id=self.previous_id)
        return self._request(history if history is not None else self.history or ())

    def followup(
        self, outputs: Sequence[dict], *, previous_id: str, history: Sequence[dict] = ()
    ) -> ResponseRequest:
        """Return the request that hands the model its function-call outputs.

        With gateway storage it continues from the response that asked for them;
        without, it replays everything so far followed by the outputs.
        """
        if self.store:
            return self._request(outputs, previous_id=previous_id)
        return self._request([*history, *outputs])

    def _request(self, items: Sequence[dict], *, previous_id: str = "") -> ResponseRequest:
        reasoning = None
        include: tuple[str, ...] = ()
        if self.reasoning_model:
            reasoning = Reasoning(
                effort=self.reasoning_effort or None, summary=self.reasoning_summary or None
            )
            if not self.store:
                # Stateless turns must carry the model's reasoning forward themselves.
                include = ("reasoning.encrypted_content",)
        tools: list = [to_function_tool(get_tool(name)) for name in self.tools]
        if self.web_search:
            tools.append(WebSearchTool())
        return ResponseRequest(
            model=self.model,
            input=list(items),
            instructions=self.instructions or None,
            previous_response_id=previous_id or None,
            store=self.store,
            reasoning=reasoning,
            include=include,
            max_output_tokens=self.max_output_tokens,
            tools=tools,
            stream=True,
        )
