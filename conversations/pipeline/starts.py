"""The database side of starting a turn: its rows, its hold, and the rows its plan needs.

Plain synchronous functions, each one transaction, called from async code through
`in_database_thread`. Django's ORM does not run transactions in async code, and
keeping a turn's writes together makes their count easy to see: the question, the
answer and its running row, and one conversation update to start. Every statement
counts: a busy server runs these for every turn of every user
(tests/pipeline/test_turn_queries.py pins how many a send takes).

The rows are loaded here and the request decided from them in `plans`, which touches
no database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.catalogue.upstream import gateway_traits
from conversations.groups import speaking
from conversations.groups.people import person
from conversations.history import reads
from conversations.models import (
    Assistant,
    Attachment,
    Conversation,
    Message,
    ModelChoice,
    RunningAnswer,
)
from conversations.personal.instructions import custom_instructions
from conversations.pipeline import assistance, plans
from conversations.pipeline.admission import (
    Refused,
    admit_turn,
    checked_instructions,
    checked_text,
    held,
    hold_quota,
    member_conversation,
    member_message,
    refuse_busy,
)
from conversations.pipeline.attaching import (
    attach_files,
    carry_attachments,
    load_inputs,
    turn_inputs,
)
from conversations.pipeline.inputs import Inputs, prepare
from conversations.pipeline.plans import SUMMARY_MODES, TurnOptions, TurnPlan
from conversations.rendering import stored
from conversations.usage import limits

__all__ = [
    "SendResult",
    "prepare_edit",
    "prepare_regenerate",
    "prepare_send",
    "replay_history",
    "switch_branch",
]

# What planning a turn reads of the messages before it (`plans.build_plan`,
# `plans.estimate_input`, `replays.history_items`); a send loads only these of a
# conversation's earlier messages.
PLANNED_FIELDS = (
    "attachment_tokens",
    "author",
    "conversation_id",
    "role",
    "text",
    "status",
    "response_id",
    "replay_items",
)


@dataclass(frozen=True)
class SendResult:
    """A started turn: its plan, its conversation, and its two new messages.

    `messages` (question, answer) are ready to render as the sending tab shows them,
    with their alternatives, model label and images, so that tab need not read back
    what this transaction just wrote.
    """

    # None for a group member's message that asks the model nothing (`chatter`).
    plan: TurnPlan | None
    conversation: Conversation
    created: bool
    messages: tuple[reads.MessageView, ...] = ()
    # The ids of a group conversation's people, whose sidebars move; () outside a group.
    people: tuple[int, ...] = ()


def prepare_send(
    *,
    user,
    conversation_id: int | None,
    text: str,
    model_id: int | None,
    instructions: str | None,
    worker_channel: str,
    options: TurnOptions = TurnOptions(),  # noqa: B008 - frozen, so sharing it is safe
) -> SendResult:
    """Check the input, save the user's message and an empty answer, and plan the request.

    In a group conversation a message that does not call the model (`speaking`) is
    saved alone: the members are talking among themselves. The member who sends pays
    for the answer, from their own quota, with a model they may use.
    """
    text = checked_text(text, images=bool(options.attachment_ids))
    if instructions is not None:
        instructions = checked_instructions(instructions)
    with transaction.atomic():
        created = conversation_id is None
        conversation, policy = admit_turn(user, conversation_id, check_busy=False)
        owner = conversation.owner_id == user.pk
        names = speaking.speakers(conversation) if not created else {}
        if not owner:
            refuse_owner_settings(conversation, instructions)
            instructions, options = None, replace(options, custom_instructions=None)
        if names and not calls_model(conversation, names, text):
            return chatter(user, conversation, text, options, names)
        refuse_busy(answering=conversation.answering, running=conversation.running)
        assistant = assistance.turn_assistant(user, conversation, options, created=created)
        options = assistance.locked_options(assistant, options)
        model, notices = assistance.turn_model(user, conversation, model_id, assistant)
        changed = apply_settings(conversation, instructions, options)
        if owner:
            # A member's pick is for their turn; the group's model stays the owner's.
            conversation.model = model
            changed.append("model")
        if created:
            # The messages need the row; the answer's own update then sets the leaf.
            conversation.save(force_insert=True)
            changed = []

        # The plan replays the branch's attachments only when it cannot continue
        # upstream; start_answer loads them then.
        branch = (
            conversation.visible_branch(attachments=False, fields=PLANNED_FIELDS)
            if not created
            else []
        )
        parent = branch[-1] if branch else None
        question = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role=Message.Role.USER,
            author=user,
            text=text,
            **stored.columns(role=Message.Role.USER, text=text),
        )
        attached = attach_files(user, question, model, options.attachment_ids)
        plan, answer = start_answer(
            user,
            conversation,
            [*branch, question],
            model,
            worker_channel,
            options,
            changed,
            policy=policy,
            known={question.pk: attached},
            assistant=assistant,
            names=names,
        )
    return sent(
        plan, conversation, created, branch, question, answer, model, attached, notices, names
    )


def refuse_owner_settings(conversation: Conversation, instructions: str | None) -> None:
    """Refuse a member's send that changes the conversation's instructions: the owner's."""
    if instructions is not None and instructions != conversation.instructions:
        raise Refused(_("Only the conversation's owner can change its instructions."))


def calls_model(conversation: Conversation, names: Mapping[int, str], text: str) -> bool:
    """Whether a group member's message asks the model, as the conversation's setting says."""
    if speaking.answers_every_message(conversation, len(names)):
        return True
    called = []
    if conversation.model is not None:
        called += [conversation.model.label, conversation.model.upstream_id]
    if conversation.assistant_id is not None and conversation.assistant is not None:
        called.append(conversation.assistant.name)
    return speaking.mentions_model(text, called)


def chatter(
    user, conversation: Conversation, text: str, options: TurnOptions, names: Mapping[int, str]
) -> SendResult:
    """Save a group member's message that asks the model nothing: no answer, no quota.

    It goes at the end of the branch on show, below an answer still streaming if there
    is one: people may talk while the model writes.
    """
    branch = conversation.visible_branch(attachments=False, fields=("role",))
    question = Message.objects.create(
        conversation=conversation,
        parent=branch[-1] if branch else None,
        role=Message.Role.USER,
        author=user,
        text=text,
        **stored.columns(role=Message.Role.USER, text=text),
    )
    attached = attach_files(user, question, conversation.model, options.attachment_ids)
    conversation.current_leaf = question
    conversation.updated_at = timezone.now()
    conversation.save(update_fields=["current_leaf", "updated_at"])
    view = reads.MessageView(
        question,
        question.rendered_html,
        alternatives=(question.pk,),
        images=tuple(attached),
        author=person(user),
    )
    return SendResult(None, conversation, False, messages=(view,), people=people_ids(names))


def people_ids(names: Mapping[int, str]) -> tuple[int, ...]:
    """Return the user ids of a group's people (`names`)."""
    return tuple(names)


def apply_settings(conversation, instructions: str | None, options: TurnOptions) -> list[str]:
    """Set the conversation's instructions and custom instructions switch as the page
    sent them with the turn; return the names of the fields set."""
    changed = []
    if instructions is not None:
        conversation.instructions = instructions
        changed.append("instructions")
    if options.custom_instructions is not None:
        conversation.custom_instructions = options.custom_instructions
        changed.append("custom_instructions")
    return changed


def sent(
    plan: TurnPlan,
    conversation: Conversation,
    created: bool,
    branch: Sequence[Message],
    question: Message,
    answer: Message,
    model: ModelChoice,
    attached: Sequence[Attachment],
    notices: Sequence[str],
    names: Mapping[int, str],
) -> SendResult:
    """Return a saved send: its plan completed, and its two messages ready to show.

    `branch` is what the question was asked below, without it; `names` the group's
    people (`speaking.speakers`), empty outside a group.
    """
    # The branch on show ends at the parent, so nothing else hangs below it yet.
    shown = (
        reads.MessageView(
            question,
            question.rendered_html,
            alternatives=(question.pk,),
            images=tuple(attached),
            author=person(question.author) if names else None,
        ),
        reads.MessageView(
            answer,
            "",
            alternatives=(answer.pk,),
            model_label=model.label,
            assistant=answer.assistant,
        ),
    )
    plan = replace(
        plan,
        user_message_id=question.pk,
        needs_title=not conversation.title and not any(m.role == "assistant" for m in branch),
        first_user_text=question.text if not branch else "",
        notices=tuple(notices),
    )
    return SendResult(plan, conversation, created, messages=shown, people=people_ids(names))


def prepare_regenerate(
    *,
    user,
    message_id: int,
    worker_channel: str,
    model_id: int | None = None,
    options: TurnOptions = TurnOptions(),  # noqa: B008
) -> TurnPlan:
    """Answer a question again, as a new sibling of `message_id` (an answer).

    The new answer continues from the response before its question, so no history is
    resent; the old answer stays in the tree, one click away in the branch switcher.
    """
    with transaction.atomic():
        old = member_message(user, message_id, role=Message.Role.ASSISTANT)
        if old.is_streaming:
            raise Refused(_("This answer is still being generated."))
        conversation, policy = admit_turn(user, old.conversation_id)
        assistant = assistance.turn_assistant(user, conversation, options, created=False)
        options = assistance.locked_options(assistant, options)
        model, notices = assistance.turn_model(user, conversation, model_id, assistant)
        plan = answer_again(
            user, conversation, old.parent, model, worker_channel, options, policy, assistant
        )
    return replace(plan, notices=tuple(notices))


def prepare_edit(
    *,
    user,
    message_id: int,
    text: str,
    worker_channel: str,
    options: TurnOptions = TurnOptions(),  # noqa: B008
) -> TurnPlan:
    """Save an edited question as a sibling of `message_id` and answer it afresh.

    The edited question keeps the images and documents of the one it replaces: the
    user changed the words, not the files, and the model must see them again.
    """
    with transaction.atomic():
        old = member_message(user, message_id, role=Message.Role.USER)
        attached = list(old.attachments.all())
        text = checked_text(text, images=bool(attached))
        conversation, policy = admit_turn(user, old.conversation_id)
        assistant = assistance.turn_assistant(user, conversation, options, created=False)
        options = assistance.locked_options(assistant, options)
        model, notices = assistance.turn_model(user, conversation, None, assistant)
        question = Message.objects.create(
            conversation=conversation,
            parent=old.parent,
            role=Message.Role.USER,
            author=user,
            text=text,
            **stored.columns(role=Message.Role.USER, text=text),
        )
        carry_attachments(question, attached, model)
        plan = answer_again(
            user, conversation, question, model, worker_channel, options, policy, assistant
        )
    return replace(plan, user_message_id=question.pk, notices=tuple(notices))


def answer_again(
    user, conversation, question, model, worker_channel, options, policy, assistant
) -> TurnPlan:
    """Start a new answer to `question` on a branch of its own (a regeneration, an edit)."""
    plan, _answer = start_answer(
        user,
        conversation,
        branch_ending_at(question),
        model,
        worker_channel,
        options,
        policy=policy,
        assistant=assistant,
        names=speaking.speakers(conversation),
    )
    return plan


def switch_branch(*, user, message_id: int) -> int:
    """Show the branch through `message_id` (its newest continuation); return the chat's id."""
    with transaction.atomic():
        message = member_message(user, message_id)
        conversation = member_conversation(user, message.conversation_id)
        conversation.current_leaf = conversation.newest_leaf_under(message)
        conversation.save(update_fields=["current_leaf"])
    return conversation.pk


def start_answer(
    user,
    conversation,
    branch: list[Message],
    model,
    worker_channel,
    options,
    changed: Sequence[str] = (),
    *,
    policy: limits.Policy | None = None,
    known: Mapping[int, Sequence[Attachment]] | None = None,
    assistant: Assistant | None = None,
    names: Mapping[int, str] | None = None,
) -> tuple[TurnPlan, Message]:
    """Hold the quota, create the empty answer to the last message of `branch`, show it.

    The conversation is written once, here: its new leaf and activity time, together
    with the `changed` fields the caller set (model, instructions). `policy` is the
    user's limit rows, read by `admit_turn`; `known` the attachments of questions the
    caller just saved (by id), which need no reading back. The hold counts the
    attachments as they will be sent (`inputs.prepare`), before any request. `names`
    are a group's people (`speaking.speakers`): the model reads who said what.

    The turn is `user`'s: their quota holds it and their running answers count it,
    whoever owns the conversation.
    """
    names = speaking.with_writers(names, branch) if names else {}
    personal = custom_instructions(user)
    inputs = turn_inputs(branch, model, known=known)
    note_attachment_tokens(branch[-1], inputs)
    estimate = plans.estimate_input(
        plans.turn_instructions(conversation, personal, assistant, names=names), branch, inputs
    )
    reservation = hold_quota(user, estimate, model.max_output_tokens, policy)
    answer = new_answer(branch[-1], model, options, assistant)
    RunningAnswer.objects.create(
        message=answer,
        owner_id=user.pk,
        worker_channel=worker_channel,
        quota_hold=held(reservation, estimate),
    )
    conversation.current_leaf = answer
    conversation.updated_at = timezone.now()
    conversation.save(update_fields=["current_leaf", "updated_at", *changed])
    plan = planned(
        user, conversation, branch, answer, model, reservation, personal, inputs, assistant, names
    )
    return plan, answer


def note_attachment_tokens(question: Message, inputs: plans.Inputs) -> None:
    """Keep what the question's attachments cost as sent, for the holds of later turns
    that continue upstream without sending them (`plans.estimate_input`). Written only
    for a question with attachments: a plain send pays no statement for it."""
    sent = inputs.get(question.pk)
    if sent is None or sent.tokens == question.attachment_tokens:
        return
    question.attachment_tokens = sent.tokens
    Message.objects.filter(pk=question.pk).update(attachment_tokens=sent.tokens)


def planned(
    user,
    conversation: Conversation,
    branch: Sequence[Message],
    answer: Message,
    model: ModelChoice,
    reservation,
    personal: str,
    inputs: Inputs,
    assistant: Assistant | None = None,
    names: Mapping[int, str] | None = None,
) -> TurnPlan:
    """Plan the request for `answer` to the last message of `branch`, within its hold;
    `personal` is the sender's custom instructions, `inputs` the attachments sent
    (`turn_inputs`), `assistant` the one it speaks as, `names` a group's people."""
    plan = plans.build_plan(
        conversation,
        branch,
        answer,
        model,
        inputs=inputs,
        traits=gateway_traits(),
        personal=personal,
        assistant=assistant,
        names=names or {},
    )
    return replace(
        plan,
        user_id=user.pk,
        reservation=reservation,
        max_output_tokens=reservation.max_output_tokens,
        owner_is_staff=user.is_staff,
    )


def new_answer(
    question: Message,
    model: ModelChoice,
    options: TurnOptions,
    assistant: Assistant | None = None,
) -> Message:
    """Create the empty answer, with the reasoning and search choices this turn uses."""
    answer = answer_to(question, model, options, assistant)
    answer.save(force_insert=True)
    return answer


def answer_to(
    question: Message,
    model: ModelChoice,
    options: TurnOptions,
    assistant: Assistant | None = None,
) -> Message:
    """Return `question`'s empty answer, not saved yet, with the reasoning and search
    choices this turn uses and the version of the assistant it speaks as."""
    effort = ""
    summary = ""
    if model.accepts_reasoning:
        effort = options.effort if options.effort in model.effort_choices else ""
        effort = effort or model.default_reasoning_effort
        summary = options.summary if options.summary in SUMMARY_MODES else ""
    return Message(
        conversation_id=question.conversation_id,
        parent=question,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model_name=model.upstream_id,
        reasoning_effort=effort,
        reasoning_summary_mode=summary,
        web_search=options.web_search and model.accepts_web_search,
        assistant=assistant,
        assistant_version=assistant.version if assistant is not None else None,
    )


def branch_ending_at(message: Message) -> list[Message]:
    """Return `message` and its ancestors, root first, from one query."""
    by_id = {m.pk: m for m in Message.objects.filter(conversation_id=message.conversation_id)}
    chain = []
    node = by_id.get(message.pk)
    while node is not None:
        chain.append(node)
        node = by_id.get(node.parent_id)
    return chain[::-1]


def replay_history(plan: TurnPlan) -> tuple[list[dict], int]:
    """Return the branch of `plan`'s answer as input items for a replay, fitted to the
    model's context window, and how many earlier turns were left out."""
    question = Message.objects.get(pk=plan.answer_id).parent
    branch = branch_ending_at(question)
    return plans.fitted_history(
        branch,
        prepare(load_inputs(branch, plan.file_sending), plan.file_sending),
        context_window=plan.context_window,
        instructions=plan.instructions,
        max_output_tokens=plan.max_output_tokens,
        names=plan.names,
    )
