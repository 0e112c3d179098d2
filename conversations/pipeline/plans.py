"""What one turn will ask the gateway for, decided before the gateway is called.

A `TurnPlan` is plain data. The functions here decide it from rows already loaded
(`starts` loads them: the branch, the model, the questions' images and documents as
request parts, `inputs.QuestionInputs`) and touch no database, so the generation never
touches the ORM to decide what to send, and tests can read exactly what a turn would
request.

How earlier turns reach the model is the catalogue entry's context mode: continue
upstream with `previous_response_id`, or replay the branch as input items (`replays`,
whose functions are named here too), cut from its oldest turns to fit the model's
context window. Optional request fields are sent only while the gateway has not
rejected them for the model (`ModelChoice.unsupported_params`); a rejection in this
turn drops them too (`TurnPlan.request(..., dropped=...)`), and a refused file has the
question sent again with its documents as text (`files_as_text`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from django.conf import settings

from conversations.gateway.request import Reasoning, ResponseRequest, WebSearchTool
from conversations.groups.speaking import group_instructions, spoken
from conversations.models import Assistant, Conversation, Message, ModelChoice
from conversations.pipeline.inputs import (
    NO_INPUTS,
    FileSending,
    Inputs,
    QuestionInputs,
    prepare_question,
)
from conversations.pipeline.replays import (
    fit_history,
    fitted_history,
    history_budget,
    history_items,
    paired_tool_items,
)
from conversations.tools import get_tool, to_function_tool
from conversations.usage.ledger import estimate_tokens
from conversations.usage.quotas import Reservation

if TYPE_CHECKING:
    from conversations.catalogue.upstream import GatewayTraits

__all__ = [
    "DROPPABLE_PARAMS",
    "TurnOptions",
    "TurnPlan",
    "build_plan",
    "continues_from",
    "estimate_input",
    "files_as_text",
    "fit_history",
    "fitted_history",
    "history_budget",
    "history_items",
    "paired_tool_items",
    "tools_of",
]

SUMMARY_MODES = ("auto", "concise", "detailed")
# Request fields the app adds on its own and can leave out when a gateway rejects them,
# named as `UnsupportedParameterError.unsupported_param` names them.
DROPPABLE_PARAMS = frozenset(
    {
        "reasoning",
        "reasoning.summary",
        "include",
        "stream_options",
        "store",
        "tools",
        "tools.web_search",
        "max_output_tokens",
        "instructions",
    }
)
# Answers whose text is in the model's own memory upstream, so we can continue from them.
CONTINUABLE = {Message.Status.COMPLETE, Message.Status.INCOMPLETE}


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """The composer's per-message choices, as sent by the page (validated in `starts`)."""

    effort: str = ""
    summary: str = ""
    web_search: bool = False
    attachment_ids: tuple[int, ...] = ()
    # The conversation's switch for the user's custom instructions, saved with the turn
    # as its instructions are; None when the page did not send it.
    custom_instructions: bool | None = None
    # The assistant a new conversation starts with (`assistance.turn_assistant`).
    assistant_id: int | None = None


@dataclass(frozen=True, slots=True)
class TurnPlan:
    user_id: int
    conversation_id: int
    answer_id: int
    model: str
    model_choice_id: int | None
    instructions: str
    # Send the branch every turn instead of `previous_response_id` (the model's context
    # mode is "replay", or "auto" found the gateway stateless).
    replay: bool
    # The branch's last answer to continue from; empty when the history is replayed.
    previous_id: str
    # Only the new user input, sent with previous_id.
    new_input: tuple[dict[str, Any], ...]
    # How documents go (PDFs as files, or all as text within a budget), and the new
    # question's words and attachments, to send it again with its documents as text
    # when the gateway refuses files (`files_as_text`).
    file_sending: FileSending = field(default_factory=FileSending)
    question_text: str = ""
    question_inputs: QuestionInputs = NO_INPUTS
    # The whole branch as input items: built up front only when there is no previous_id;
    # otherwise `starts.replay_history` builds it if the gateway forgot the chain.
    history: tuple[dict[str, Any], ...] | None = None
    # Context mode "auto": check that the gateway echoes the previous_response_id sent.
    detect_stateless: bool = False
    # Earlier turns `fit_history` left out of `history`.
    turns_left_out: int = 0
    # Notes for the answer: the question's documents cut to fit the model.
    file_notes: tuple[dict, ...] = ()
    context_window: int | None = None
    max_output_tokens: int | None = None
    reasoning_effort: str = ""
    reasoning_summary: str = ""
    reasoning_model: bool = False
    tools: tuple[str, ...] = ()
    web_search: bool = False
    # Request fields the gateway rejected for this model before: never sent.
    unsupported: frozenset[str] = frozenset()
    # Fields OpenAI documents that relays may refuse: sent only where known accepted.
    send_store: bool = False
    send_stream_options: bool = False
    # The catalogue marks the model unknown to the gateway: a success clears the mark.
    model_marked_unknown: bool = False
    # The conversation's owner is staff: the final bubble shows what the gateway said.
    owner_is_staff: bool = False
    needs_title: bool = False
    first_user_text: str = ""
    user_message_id: int | None = None
    notices: tuple[str, ...] = field(default=())
    # Tokens the history and instructions amount to, for estimates when usage is missing.
    input_estimate: int = 0
    reservation: Reservation | None = None
    # The assistant the answer speaks as, for its usage records.
    assistant_id: int | None = None
    assistant_name: str = ""
    # A group's people by user id (`speaking.speakers`): questions reach the model after
    # their writer's name. Empty outside a group.
    names: Mapping[int, str] = field(default_factory=dict)

    def request(
        self, *, history: Sequence[dict] | None = None, dropped: Collection[str] = ()
    ) -> ResponseRequest:
        """Return the streaming request: continue from `previous_id`, or send `history`."""
        if history is None and self.previous_id:
            return self._request(self.new_input, previous_id=self.previous_id, dropped=dropped)
        items = history if history is not None else self.history or ()
        return self._request(items, dropped=dropped)

    def followup(
        self,
        outputs: Sequence[dict],
        *,
        previous_id: str,
        history: Sequence[dict] = (),
        dropped: Collection[str] = (),
    ) -> ResponseRequest:
        """Return the request that hands the model its function-call outputs.

        Continuing upstream, it continues from the response that asked for them;
        replaying, it sends everything so far followed by the outputs.
        """
        if previous_id:
            return self._request(outputs, previous_id=previous_id, dropped=dropped)
        return self._request([*history, *outputs], dropped=dropped)

    def _request(
        self, items: Sequence[dict], *, previous_id: str = "", dropped: Collection[str] = ()
    ) -> ResponseRequest:
        skip = self.unsupported | set(dropped)
        # Only a replaying turn keeps nothing upstream: a first turn continuing upstream
        # also sends its (one-message) history, and must be stored to be continued.
        replaying = self.replay
        reasoning = None
        include: tuple[str, ...] = ()
        if self.reasoning_model and "reasoning" not in skip:
            summary = self.reasoning_summary if "reasoning.summary" not in skip else ""
            reasoning = Reasoning(effort=self.reasoning_effort or None, summary=summary or None)
            if replaying and "include" not in skip:
                # Stateless turns must carry the model's reasoning forward themselves.
                include = ("reasoning.encrypted_content",)
        tools: list = []
        if "tools" not in skip:
            tools = [to_function_tool(get_tool(name)) for name in self.tools]
        if self.web_search and "tools.web_search" not in skip:
            tools.append(WebSearchTool())
        instructions = self.instructions or None
        if instructions and "instructions" in skip:
            # The gateway takes no `instructions` field: say them as the first message.
            items = [
                {"type": "message", "role": "system", "content": instructions},
                *items,
            ]
            instructions = None
        return ResponseRequest(
            model=self.model,
            input=list(items),
            instructions=instructions,
            previous_response_id=previous_id or None,
            store=False if replaying and self.send_store and "store" not in skip else None,
            reasoning=reasoning,
            include=include,
            max_output_tokens=(self.max_output_tokens if "max_output_tokens" not in skip else None),
            tools=tools,
            stream=True,
            stream_options=(
                # Obfuscation pads every delta to hide token lengths from network
                # observers; we are the only reader, so skip the extra bytes.
                {"include_obfuscation": False}
                if self.send_stream_options and "stream_options" not in skip
                else None
            ),
        )


def continues_from(branch: Sequence[Message], model: ModelChoice) -> str:
    """Return the response id the new question of `branch` continues from upstream.

    Empty when the branch must be replayed instead: the model's context mode says so,
    or the answer before the question is not one the gateway kept.
    """
    parent = branch[-2] if len(branch) > 1 else None
    if (
        not model.replays_history
        and parent is not None
        and parent.role == Message.Role.ASSISTANT
        and parent.status in CONTINUABLE
        and parent.response_id
    ):
        return parent.response_id
    return ""


def build_plan(
    conversation: Conversation,
    branch: Sequence[Message],
    answer: Message,
    model: ModelChoice,
    *,
    inputs: Inputs,
    traits: GatewayTraits,
    personal: str = "",
    assistant: Assistant | None = None,
    names: Mapping[int, str] | None = None,
) -> TurnPlan:
    """Plan the request for `answer`, whose question is the last message of `branch`.

    The catalogue entry says how the earlier turns reach the model: continuing from the
    last answer's response upstream (`continues_from`), or replaying the branch (cut to
    the model's context window) in the request itself. `inputs` holds the attachments
    of the questions sent (`inputs.prepare`): the new one, or the whole branch's when it
    is replayed. `personal` is the owner's custom instructions and `assistant` the one
    the conversation is bound to (`turn_instructions`); the assistant also picks which
    of the model's tools are on. `names` are a group's people: each question reaches the
    model after its writer's name.
    """
    names = names or {}
    question = branch[-1]
    question_text = spoken(question.text, question.author_id, names) if names else question.text
    attached = inputs.get(question.pk, NO_INPUTS)
    instructions = turn_instructions(conversation, personal, assistant, names=names)
    previous_id = continues_from(branch, model)
    history = None
    turns_left_out = 0
    if not previous_id:
        history, turns_left_out = fitted_history(
            branch,
            inputs,
            context_window=model.context_window,
            instructions=instructions,
            max_output_tokens=model.max_output_tokens,
            names=names,
        )
    replay = model.replays_history
    return TurnPlan(
        user_id=conversation.owner_id,
        conversation_id=conversation.pk,
        answer_id=answer.pk,
        model=model.upstream_id,
        model_choice_id=model.pk,
        instructions=instructions,
        replay=replay,
        previous_id=previous_id,
        new_input=(attached.message(question_text),),
        file_sending=FileSending.for_model(model),
        question_text=question_text,
        question_inputs=attached,
        history=tuple(history) if history is not None else None,
        detect_stateless=model.context_mode == ModelChoice.ContextMode.AUTO and not replay,
        turns_left_out=turns_left_out,
        file_notes=attached.cuts,
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
        reasoning_effort=answer.reasoning_effort,
        reasoning_summary=answer.reasoning_summary_mode,
        reasoning_model=model.accepts_reasoning,
        tools=tools_of(model, assistant, group=bool(names)),
        web_search=answer.web_search,
        unsupported=frozenset(model.unsupported_params or ()),
        send_store=traits.store,
        send_stream_options=traits.stream_options,
        model_marked_unknown=model.unknown_to_gateway_at is not None,
        input_estimate=estimate_input(instructions, branch, inputs),
        assistant_id=assistant.pk if assistant else None,
        assistant_name=assistant.name if assistant else "",
        names=names,
    )


def files_as_text(plan: TurnPlan) -> TurnPlan:
    """Return `plan` sending its documents as text: the gateway refused a file.

    The new question is built again here; a history to replay is read again
    (`starts.replay_history`), since earlier questions may carry files too.
    """
    sending = replace(plan.file_sending, as_files=False)
    attached = prepare_question(plan.question_inputs.sources, sending)
    return replace(
        plan,
        file_sending=sending,
        new_input=(attached.message(plan.question_text),),
        question_inputs=attached,
        file_notes=attached.cuts,
        history=None,
        unsupported=plan.unsupported | {"input_file"},
    )


def estimate_input(
    instructions: str, branch: Sequence[Message], inputs: Inputs | None = None
) -> int:
    """Return the tokens the turn's instructions, the branch and the attachments sent
    (`inputs`: their parts as sent, so a document cut to fit counts as cut) amount to.

    Earlier questions whose attachments this turn does not send (it continues upstream,
    where the gateway still reads them) count what they cost when they were sent.
    """
    inputs = inputs or {}
    words = estimate_tokens(instructions + "".join(message.text for message in branch))
    earlier = sum(m.attachment_tokens for m in branch if m.pk not in inputs)
    return words + earlier + sum(attached.tokens for attached in inputs.values())


def turn_instructions(
    conversation: Conversation,
    personal: str,
    assistant: Assistant | None = None,
    *,
    names: Mapping[int, str] | None = None,
) -> str:
    """Return the instructions a turn sends, from the widest to the narrowest: the site's
    (`CHAT_SITE_INSTRUCTIONS`), what a group is (`names`: its people), the assistant's,
    the sender's custom instructions (`personal`, unless the conversation leaves them
    out), then the conversation's own. The later ones come last so that they win where
    two disagree."""
    parts = (
        settings.CHAT_SITE_INSTRUCTIONS,
        group_instructions(names or {}),
        assistant.instructions if assistant is not None else "",
        personal if conversation.custom_instructions else "",
        conversation.instructions,
    )
    return "\n\n".join(part for part in parts if part)


def tools_of(
    model: ModelChoice, assistant: Assistant | None = None, *, group: bool = False
) -> tuple[str, ...]:
    """Return the registered tools the admin enabled for the model; with an assistant,
    those of them its owner turned on; in a `group`, none that reads the sender's own
    data (every member reads the answer)."""
    if not model.accepts_function_tools:
        return ()
    found = ((name, get_tool(name)) for name in model.tools)
    return tuple(
        name
        for name, tool in found
        if tool is not None
        and (assistant is None or name in assistant.tools)
        and not (group and tool.private)
    )
