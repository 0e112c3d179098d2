"""What one turn will ask the gateway for, decided before the gateway is called.

A `TurnPlan` is plain data built from the database in one place (`records`), so the
generation never touches the ORM to decide what to send, and tests can read exactly
what a turn would request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conversations.gateway.request import Reasoning, ResponseRequest
from conversations.quotas import Reservation

__all__ = ["TurnPlan"]


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
    # The whole branch as input items, sent when there is no previous_id to continue.
    history: tuple[dict[str, Any], ...]
    max_output_tokens: int | None = None
    reasoning_effort: str = ""
    reasoning_model: bool = False
    needs_title: bool = False
    first_user_text: str = ""
    user_message_id: int | None = None
    notices: tuple[str, ...] = field(default=())
    # Tokens the history and instructions amount to, for estimates when usage is missing.
    input_estimate: int = 0
    reservation: Reservation | None = None

    def request(self, *, replay: bool = False) -> ResponseRequest:
        """Return the streaming request; `replay` sends the whole branch instead of the id."""
        continue_previous = bool(self.previous_id) and not replay
        reasoning = None
        include: tuple[str, ...] = ()
        if self.reasoning_model:
            reasoning = Reasoning(effort=self.reasoning_effort or None)
            if not self.store:
                # Stateless turns must carry the model's reasoning forward themselves.
                include = ("reasoning.encrypted_content",)
        return ResponseRequest(
            model=self.model,
            input=list(self.new_input if continue_previous else self.history),
            instructions=self.instructions or None,
            previous_response_id=self.previous_id if continue_previous else None,
            store=self.store,
            reasoning=reasoning,
            include=include,
            max_output_tokens=self.max_output_tokens,
            stream=True,
        )
