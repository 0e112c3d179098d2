"""The database side of a turn: create its rows, plan its request, checkpoint, finish.

Plain synchronous functions, each one transaction, called from async code through
`in_database_thread`. Django's ORM does not run transactions in async code, and
keeping every write of a turn here makes the count of writes per answer easy to see:
two inserts and one conversation update to start, a checkpoint a second, one final
update. Every statement counts: a busy server runs these for every turn of every user
(tests/pipeline/test_turn_queries.py pins how many a send takes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.attachments import images as attachments
from conversations.catalogue.upstream import gateway_traits
from conversations.gateway.errors import ModelNotFoundError
from conversations.gateway.request import assistant_message, user_message
from conversations.gateway.response import Usage
from conversations.history import reads
from conversations.models import (
    Attachment,
    Conversation,
    Message,
    ModelChoice,
    UsageRecord,
    preferred,
)
from conversations.pipeline.answer import AnswerState
from conversations.pipeline.plans import (
    SUMMARY_MODES,
    TurnOptions,
    TurnPlan,
    fit_history,
    history_budget,
    paired_tool_items,
)
from conversations.tools import get_tool
from conversations.usage import ledger, quotas

__all__ = [
    "ModelUnavailable",
    "Refused",
    "SendResult",
    "checkpoint",
    "finish_answer",
    "prepare_edit",
    "prepare_regenerate",
    "prepare_send",
    "recover_orphans",
    "streaming_answer",
    "switch_branch",
]

# What planning a turn reads of the messages before it (`build_plan`, `estimate_input`,
# `history_items`); a send loads only these of a conversation's earlier messages.
PLANNED_FIELDS = (
    "conversation_id",
    "role",
    "text",
    "status",
    "response_id",
    "replay_items",
)
# What a failed answer says when even its final save failed; the text is kept.
SAVE_FAILED = "This answer could not be saved completely; its text was kept."
# A streaming answer whose checkpoint is older than this has lost its process.
ORPHAN_AFTER = timedelta(seconds=30)
# Answers whose text is in the model's own memory upstream, so we can continue from them.
CONTINUABLE = {Message.Status.COMPLETE, Message.Status.INCOMPLETE}
REPLAYABLE = {
    Message.Status.COMPLETE,
    Message.Status.INCOMPLETE,
    Message.Status.CANCELLED,
    Message.Status.INTERRUPTED,
    Message.Status.FAILED,
}


class Refused(Exception):
    """The turn cannot start; `user_message` says why, in words for the user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class ModelUnavailable(Refused):
    """The page asked for a model that was disabled or deleted: its picker is out of date."""


@dataclass(frozen=True)
class SendResult:
    """A started turn: its plan, its conversation, and its two new messages.

    `messages` (question, answer) are ready to render as the sending tab shows them,
    each with `siblings`, `model_label` and its images, so that tab need not read back
    what this transaction just wrote.
    """

    plan: TurnPlan
    conversation: Conversation
    created: bool
    messages: tuple[Message, ...] = ()


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
    """Check the input, save the user's message and an empty answer, and plan the request."""
    text = checked_text(text, images=bool(options.attachment_ids))
    if instructions is not None:
        instructions = checked_instructions(instructions)
    with transaction.atomic():
        created = conversation_id is None
        if created:
            conversation = Conversation(owner=user)
        else:
            conversation = owned_conversation(user, conversation_id)
        policy = admit_turn(user, conversation)
        model, notices = choose_model(user, conversation, model_id)
        conversation.model = model
        changed = ["model"]
        if instructions is not None:
            conversation.instructions = instructions
            changed.append("instructions")
        if created:
            # The messages need the row; the answer's own update then sets the leaf.
            conversation.save(force_insert=True)
            changed = []

        # The plan replays the branch's images only when it cannot continue upstream;
        # build_plan loads them then.
        branch = (
            conversation.visible_branch(attachments=False, fields=PLANNED_FIELDS)
            if not created
            else []
        )
        parent = branch[-1] if branch else None
        question = Message.objects.create(
            conversation=conversation, parent=parent, role=Message.Role.USER, text=text
        )
        attach_images(user, question, model, options.attachment_ids)
        plan, answer = start_answer(
            user,
            conversation,
            [*branch, question],
            model,
            worker_channel,
            options,
            changed,
            policy=policy,
        )
    # The branch on show ends at the parent, so nothing else hangs below it yet.
    question.siblings = [question.pk]
    answer.siblings = [answer.pk]
    question.model_label = question.model_name
    answer.model_label = model.label
    plan = replace(
        plan,
        user_message_id=question.pk,
        needs_title=not conversation.title and not any(m.role == "assistant" for m in branch),
        first_user_text=text if not branch else "",
        notices=tuple(notices),
    )
    return SendResult(plan, conversation, created, messages=(question, answer))


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
        old = owned_message(user, message_id, role=Message.Role.ASSISTANT)
        if old.is_streaming:
            raise Refused(_("This answer is still being generated."))
        conversation = owned_conversation(user, old.conversation_id)
        policy = admit_turn(user, conversation)
        model, notices = choose_model(user, conversation, model_id)
        question = old.parent
        plan, _answer = start_answer(
            user,
            conversation,
            branch_ending_at(question),
            model,
            worker_channel,
            options,
            policy=policy,
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

    The edited question keeps the images of the one it replaces: the user changed the
    words, not the pictures, and the model must see them again.
    """
    with transaction.atomic():
        old = owned_message(user, message_id, role=Message.Role.USER)
        images = list(old.attachments.all())
        text = checked_text(text, images=bool(images))
        conversation = owned_conversation(user, old.conversation_id)
        policy = admit_turn(user, conversation)
        model, notices = choose_model(user, conversation, None)
        question = Message.objects.create(
            conversation=conversation, parent=old.parent, role=Message.Role.USER, text=text
        )
        carry_images(question, images, model)
        plan, _answer = start_answer(
            user,
            conversation,
            branch_ending_at(question),
            model,
            worker_channel,
            options,
            policy=policy,
        )
    return replace(plan, user_message_id=question.pk, notices=tuple(notices))


def switch_branch(*, user, message_id: int) -> int:
    """Show the branch through `message_id` (its newest continuation); return the chat's id."""
    with transaction.atomic():
        message = owned_message(user, message_id)
        conversation = owned_conversation(user, message.conversation_id)
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
    policy: quotas.Policy | None = None,
) -> tuple[TurnPlan, Message]:
    """Hold the quota, create the empty answer to the last message of `branch`, show it.

    The conversation is written once, here: its new leaf and activity time, together
    with the `changed` fields the caller set (model, instructions). `policy` is the
    user's limit rows, read by `admit_turn`.
    """
    estimate = estimate_input(conversation, branch)
    reservation = hold_quota(user, estimate, model.max_output_tokens, policy)
    answer = new_answer(
        conversation,
        branch[-1],
        model,
        worker_channel,
        options,
        quota_hold=held(reservation, estimate),
    )
    conversation.current_leaf = answer
    conversation.updated_at = timezone.now()
    conversation.save(update_fields=["current_leaf", "updated_at", *changed])
    # An answer never has images of its own.
    answer.mark_without_attachments()
    plan = build_plan(conversation, branch, answer, model)
    return (
        replace(
            plan,
            reservation=reservation,
            max_output_tokens=reservation.max_output_tokens,
            owner_is_staff=user.is_staff,
        ),
        answer,
    )


def estimate_input(conversation: Conversation, branch: list[Message]) -> int:
    """Return the tokens the instructions and the branch amount to, roughly."""
    return ledger.estimate_tokens(
        conversation.instructions + "".join(message.text for message in branch)
    )


def checked_text(text: str, *, images: bool) -> str:
    text = text.strip()
    if not text and not images:
        raise Refused(_("Type a message first."))
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(text) > limit:
        raise Refused(
            _(
                "This message is %(length)s characters long; the limit is %(limit)s. "
                "Shorten it or split it into several messages."
            )
            % {"length": f"{len(text):,}", "limit": f"{limit:,}"}
        )
    return text


def checked_instructions(instructions: str) -> str:
    """Return the instructions stripped, or refuse them when longer than the setting.

    They go to the model with every turn of the conversation, so an unbounded text would
    cost its length in tokens each time.
    """
    instructions = instructions.strip()
    limit = settings.CHAT_MAX_INSTRUCTIONS_CHARS
    if len(instructions) > limit:
        raise Refused(
            _(
                "These instructions are %(length)s characters long; the limit is %(limit)s. "
                "Shorten them and send again."
            )
            % {"length": f"{len(instructions):,}", "limit": f"{limit:,}"}
        )
    return instructions


def owned_conversation(user, conversation_id: int) -> Conversation:
    """Return the user's conversation, locked for this transaction, or refuse."""
    conversation = (
        Conversation.objects.for_user(user).select_for_update().filter(pk=conversation_id).first()
    )
    if conversation is None:
        raise Refused(_("This conversation does not exist."))
    return conversation


def owned_message(user, message_id: int, *, role: str | None = None) -> Message:
    found = Message.objects.filter(
        conversation__in=Conversation.objects.for_user(user), pk=message_id
    )
    if role is not None:
        found = found.filter(role=role)
    message = found.select_related("parent").first()
    if message is None or (role == Message.Role.ASSISTANT and message.parent is None):
        raise Refused(_("This message does not exist."))
    return message


def hold_quota(
    user, input_estimate: int, max_output_tokens: int | None, policy: quotas.Policy | None = None
):
    """Hold the turn's worst case on the user's quota, or refuse it before any request.

    Runs inside the turn's transaction: if the turn is refused later, the hold goes too.
    The reservation's output cap (what the quota still allows) is what goes upstream.
    """
    try:
        return quotas.reserve(
            user=user,
            input_estimate=input_estimate,
            max_output_tokens=max_output_tokens,
            policy=policy,
        )
    except quotas.QuotaExceeded as error:
        raise Refused(error.user_message) from None


def held(reservation: quotas.Reservation, input_estimate: int) -> dict:
    """Return what an answer row keeps of its hold, for recovery if its process dies."""
    return {
        "counter_ids": list(reservation.counter_ids),
        "amount": reservation.amount,
        "input_estimate": input_estimate,
    }


def hold_next_round(
    plan: TurnPlan, *, used_so_far: int, input_estimate: int
) -> quotas.Reservation | None:
    """Charge a tool-calling turn's rounds so far and hold its next round's cost.

    Return the next round's reservation, or None when the quota has no room left for
    it; the rounds so far are charged either way. One short transaction, which also
    moves the answer row's hold along, so recovery gives back the right amount if the
    process dies. `plan.reservation` is left open until this commits: if the database
    fails here, the final save still settles it.
    """
    current = replace(plan.reservation)
    with transaction.atomic():
        try:
            following = quotas.reserve_next_round(
                current, used_so_far=used_so_far, input_estimate=input_estimate
            )
        except quotas.QuotaExceeded:
            following = None
        Message.objects.filter(pk=plan.answer_id, status=Message.Status.STREAMING).update(
            quota_hold=held(following, input_estimate) if following else {}
        )
    return following


def branch_ending_at(message: Message) -> list[Message]:
    """Return `message` and its ancestors, root first, from one query."""
    by_id = {m.pk: m for m in Message.objects.filter(conversation_id=message.conversation_id)}
    chain = []
    node = by_id.get(message.pk)
    while node is not None:
        chain.append(node)
        node = by_id.get(node.parent_id)
    return chain[::-1]


def attach_images(user, question: Message, model: ModelChoice, ids: tuple[int, ...]) -> None:
    """Give the question the images the user uploaded for it, if the model takes images.

    Leaves the question's `attachments` loaded, for the plan and the page.
    """
    if not ids:
        question.mark_without_attachments()
        return
    if not model.supports_images:
        raise Refused(
            _("%(model)s does not accept images. Remove them or pick another model.")
            % {"model": model.label}
        )
    try:
        claimed = attachments.claim(user=user, ids=list(ids))
    except attachments.AttachmentError as error:
        raise Refused(error.user_message) from None
    Attachment.objects.filter(pk__in=[a.pk for a in claimed]).update(message=question)
    prefetch_related_objects([question], "attachments")


def carry_images(question: Message, images: list[Attachment], model: ModelChoice) -> None:
    """Give an edited question the images of the question it replaces.

    The new rows share the stored files; a file goes only with the last row using it
    (`attachments.delete_files`). Leaves the question's `attachments` loaded.
    """
    if not images:
        question.mark_without_attachments()
        return
    if not model.supports_images:
        raise Refused(
            _("%(model)s does not accept images. Remove them or pick another model.")
            % {"model": model.label}
        )
    Attachment.objects.bulk_create(
        Attachment(
            owner_id=image.owner_id,
            message=question,
            file=image.file.name,
            content_type=image.content_type,
            original_name=image.original_name,
            size=image.size,
            width=image.width,
            height=image.height,
        )
        for image in images
    )
    prefetch_related_objects([question], "attachments")


def new_answer(
    conversation,
    question,
    model,
    worker_channel,
    options: TurnOptions = TurnOptions(),  # noqa: B008
    quota_hold: dict | None = None,
) -> Message:
    """Create the empty answer, with the reasoning and search choices this turn uses."""
    effort = ""
    summary = ""
    if model.accepts_reasoning:
        effort = options.effort if options.effort in model.effort_choices else ""
        effort = effort or model.default_reasoning_effort
        summary = options.summary if options.summary in SUMMARY_MODES else ""
    return Message.objects.create(
        conversation=conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model_name=model.upstream_id,
        worker_channel=worker_channel,
        reasoning_effort=effort,
        reasoning_summary_mode=summary,
        web_search=options.web_search and model.accepts_web_search,
        quota_hold=quota_hold or {},
    )


def admit_turn(user, conversation: Conversation) -> quotas.Policy:
    """Refuse a turn over the user's rate, while the conversation has an answer
    streaming, or while the user has too many; return the user's limit rows.

    Two answers streaming into one conversation would hang the second question below an
    unfinished answer; the page blocks Send meanwhile, this covers other tabs and races.
    The user's turn gate is locked first (`quotas.count_turn_start`), so parallel sends
    are counted one after another: without it, twenty at once all saw nothing streaming.
    One query then finds what is streaming.
    """
    policy = quotas.policy_for(user)
    try:
        quotas.count_turn_start(user.pk, policy)
    except quotas.TurnRateExceeded as error:
        raise Refused(error.user_message) from None
    streaming = list(
        Message.objects.filter(
            conversation__owner=user,
            status=Message.Status.STREAMING,
            updated_at__gte=timezone.now() - ORPHAN_AFTER,
        )
        .exclude(role=Message.Role.USER)
        .values_list("conversation_id", flat=True)
    )
    if conversation.pk is not None and conversation.pk in streaming:
        raise Refused(
            _(
                "An answer is still being written in this conversation. "
                "Wait for it to finish, or stop it."
            )
        )
    running = len(streaming)
    limit = settings.CHAT_MAX_CONCURRENT_GENERATIONS
    if running >= limit:
        raise Refused(
            _(
                "You already have %(running)d answers being generated (the limit is %(limit)d). "
                "Wait for one to finish or stop it."
            )
            % {"running": running, "limit": limit}
        )
    return policy


def choose_model(
    user, conversation: Conversation, model_id: int | None
) -> tuple[ModelChoice, list]:
    """Return the model for this turn, and notices to show when it had to change.

    A model the page asked for by id that is now disabled, gone, or not open to the
    user's groups refuses the turn (`ModelUnavailable`) rather than answering with
    another model the person did not pick; only a turn that names no model (an edit)
    falls back to the user's default. A conversation whose model the user can no longer
    use continues on another one, with a notice saying so.

    One query: the entries named (by the page and by the conversation) and every entry
    the user may use, each marked with what the user may do with it.
    """
    named = [pk for pk in (model_id, conversation.model_id) if pk is not None]
    candidates = list(
        ModelChoice.objects.with_access(user).filter(Q(pk__in=named) | Q(enabled=True, usable=True))
    )
    by_id = {model.pk: model for model in candidates}
    usable = [model for model in candidates if model.enabled and model.usable]
    current = by_id.get(conversation.model_id)
    if model_id is not None:
        chosen = by_id.get(model_id)
        if chosen is None:
            raise ModelUnavailable(_("That model is no longer available; pick another model."))
        if not chosen.enabled:
            raise ModelUnavailable(
                _("%(model)s was turned off by an administrator; pick another model.")
                % {"model": chosen.label}
            )
        if not chosen.usable:
            raise ModelUnavailable(
                _("%(model)s is not available to you; pick another model.")
                % {"model": chosen.label}
            )
    elif current in usable:
        chosen = current
    else:
        chosen = preferred(usable)
        if chosen is None:
            raise Refused(_("No models are available. Ask an administrator to enable one."))
    notices = []
    if current is not None and current not in usable and chosen != current:
        notices.append(
            _("%(old)s is no longer available; this conversation continues on %(new)s.")
            % {"old": current.label, "new": chosen.label}
        )
    return chosen, notices


def build_plan(
    conversation: Conversation, branch: list[Message], answer: Message, model: ModelChoice
) -> TurnPlan:
    """Plan the request for `answer`, whose question is the last message of `branch`.

    The catalogue entry says how the earlier turns reach the model: continuing from the
    last answer's response upstream, or replaying the branch (cut to the model's
    context window) in the request itself.
    """
    question = branch[-1]
    parent = branch[-2] if len(branch) > 1 else None
    replay = model.replays_history
    previous_id = ""
    if (
        not replay
        and parent is not None
        and parent.role == Message.Role.ASSISTANT
        and parent.status in CONTINUABLE
        and parent.response_id
    ):
        previous_id = parent.response_id
    load_images([question] if previous_id else branch)
    history = None
    turns_left_out = 0
    if not previous_id:
        history, turns_left_out = fit_history(
            history_items(branch),
            budget=history_budget(
                model.context_window, conversation.instructions, model.max_output_tokens
            ),
        )
    traits = gateway_traits()
    return TurnPlan(
        user_id=conversation.owner_id,
        conversation_id=conversation.pk,
        answer_id=answer.pk,
        model=model.upstream_id,
        model_choice_id=model.pk,
        instructions=conversation.instructions,
        replay=replay,
        previous_id=previous_id,
        new_input=(user_message(question.text, images_of(question)),),
        history=tuple(history) if history is not None else None,
        detect_stateless=model.context_mode == ModelChoice.ContextMode.AUTO and not replay,
        turns_left_out=turns_left_out,
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
        reasoning_effort=answer.reasoning_effort,
        reasoning_summary=answer.reasoning_summary_mode,
        reasoning_model=model.accepts_reasoning,
        tools=tools_of(model),
        web_search=answer.web_search,
        unsupported=frozenset(model.unsupported_params or ()),
        send_store=traits.store,
        send_stream_options=traits.stream_options,
        model_marked_unknown=model.unknown_to_gateway_at is not None,
        input_estimate=estimate_input(conversation, branch),
    )


def tools_of(model: ModelChoice) -> tuple[str, ...]:
    """Return the registered tools the admin enabled for the model."""
    if not model.accepts_function_tools:
        return ()
    return tuple(name for name in model.tools if get_tool(name) is not None)


def images_of(message: Message) -> list[tuple[str, bytes]]:
    return [attachments.image_input(image) for image in message.attachments.all()]


def load_images(messages: list[Message]) -> None:
    """Load the images of the questions among `messages` not loaded yet, in one query.

    Only questions carry images (`attach_images`); answers never need the query.
    """
    questions = [m for m in messages if m.role == Message.Role.USER]
    if questions:
        prefetch_related_objects(questions, "attachments")


def replay_history(plan: TurnPlan) -> tuple[list[dict], int]:
    """Return the branch of `plan`'s answer as input items for a replay, fitted to the
    model's context window, and how many earlier turns were left out."""
    question = Message.objects.get(pk=plan.answer_id).parent
    branch = branch_ending_at(question)
    load_images(branch)
    budget = history_budget(plan.context_window, plan.instructions, plan.max_output_tokens)
    return fit_history(history_items(branch), budget=budget)


def history_items(branch: list[Message]) -> list[dict]:
    """Return the branch as input items, for a turn that cannot continue upstream.

    Questions carry their text and images; a finished answer replays its own output
    (function calls with their outputs, in order, and encrypted reasoning) where it was
    kept, and otherwise its text as an assistant message.
    """
    items: list[dict] = []
    for message in branch:
        if message.role == Message.Role.USER:
            items.append(user_message(message.text, images_of(message)))
        elif message.status in REPLAYABLE and (message.text or message.replay_items):
            if message.replay_items and message.status == Message.Status.COMPLETE:
                items.extend(paired_tool_items(message.replay_items))
            elif message.text:
                items.append(assistant_message(message.text))
    return items


def checkpoint(answers: list[tuple[int, str]]) -> None:
    """Save the text so far of streaming answers (and prove their process is alive).

    One transaction for all of them. An answer already final is left alone: its last
    words must not be overwritten by an older checkpoint.
    """
    now = timezone.now()
    with transaction.atomic():
        for message_id, text in answers:
            Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
                text=storable(text), updated_at=now
            )


def finish_answer(
    plan: TurnPlan, state: AnswerState, *, previous_id: str, notes: Sequence[dict] = ()
) -> Message:
    """Write the answer's final state in one update, charge it, and return it.

    `notes` say how the answer was made when that differs from what the user chose
    (an option the model refused, history left out); a refused reasoning option also
    takes the effort badge off the bubble. What the app learned about the model on
    the way (that the gateway does not know it, or knows it again) goes to its
    catalogue entry in the same transaction.
    """
    outcome = state.outcome
    assert outcome is not None
    fields = {
        "text": storable(state.text),
        "status": outcome.status,
        "error": outcome.error,
        "error_code": outcome.error_code,
        "error_detail": storable(state.error.detail_for_staff()) if state.error else "",
        "notes": list(notes),
        "response_id": state.response_id,
        "previous_response_id": previous_id,
        "replay_items": storable(replayed_output(state.replay_items)),
        "reasoning_summary": storable(state.reasoning_text),
        "citations": storable(state.citations),
        "tool_calls": storable(state.tool_calls),
        "web_searches": storable(
            [{"query": s["query"], "status": s["status"]} for s in state.searches]
        ),
        **token_counts(state),
    }
    if any(note.get("param") == "reasoning" for note in notes):
        fields["reasoning_effort"] = ""
    return write_ending(plan, state, fields)


def save_answer_text(plan: TurnPlan, state: AnswerState, *, cause: BaseException) -> Message:
    """Keep what a failed final save would have lost: the text and what it cost.

    The smaller write leaves out everything that could have made the full one fail
    (ids, JSON columns): the streamed text, the token counts and the reason, so the
    answer reads as failed with its words kept, and the quota is settled once.
    """
    fields = {
        "text": storable(state.text),
        "status": Message.Status.FAILED,
        "error": SAVE_FAILED,
        "error_code": "save_failed",
        "error_detail": storable(f"{type(cause).__name__}: {cause}")[:2000],
        **token_counts(state),
    }
    return write_ending(plan, state, fields)


def write_ending(plan: TurnPlan, state: AnswerState, fields: dict) -> Message:
    """Write an answer's end, record and settle what it cost, and return it for its bubble.

    The conversation's activity time was set when the turn started; the sidebar needs
    no second write for its end.
    """
    fields = {**fields, "worker_channel": "", "quota_hold": {}, "updated_at": timezone.now()}
    with transaction.atomic():
        Message.objects.filter(pk=plan.answer_id).update(**fields)
        message = Message.objects.get(pk=plan.answer_id)
        model_choice = ModelChoice.objects.filter(pk=plan.model_choice_id).first()
        spent = record_answer_usage(plan, state, message, model_choice)
        if plan.reservation is not None:
            quotas.settle(plan.reservation, total_tokens=spent)
        learn_about_model(plan, state, message.status)
    # The final bubble: an answer shows no images, its switcher needs its siblings, and
    # its label is the catalogue entry it was generated with, unless renamed upstream.
    message.mark_without_attachments()
    labels = {model_choice.upstream_id: model_choice.label} if model_choice else None
    return reads.with_siblings([message], labels=labels)[0]


def token_counts(state: AnswerState) -> dict:
    """Return the answer's token columns: every response of the turn added up."""
    spent = state.all_usages
    if not spent:
        return {"input_tokens": None, "output_tokens": None, "reasoning_tokens": None}
    return {
        "input_tokens": sum(u.input_tokens for u in spent),
        "output_tokens": sum(u.output_tokens for u in spent),
        "reasoning_tokens": sum(u.reasoning_tokens for u in spent),
    }


def learn_about_model(plan: TurnPlan, state: AnswerState, status: str) -> None:
    """Mark the catalogue entry unknown to the gateway, or clear that mark on a success."""
    if plan.model_choice_id is None:
        return
    entry = ModelChoice.objects.filter(pk=plan.model_choice_id)
    if isinstance(state.error, ModelNotFoundError):
        entry.update(
            unknown_to_gateway_at=timezone.now(),
            unknown_to_gateway_evidence=storable(state.error.detail_for_staff())[:2000],
        )
    elif plan.model_marked_unknown and status == Message.Status.COMPLETE:
        entry.update(unknown_to_gateway_at=None, unknown_to_gateway_evidence="")


def record_unsupported_param(model_choice_id: int | None, param: str, evidence: str) -> None:
    """Remember that the gateway rejected `param` for the model, so it is not sent again."""
    if model_choice_id is None:
        return
    with transaction.atomic():
        model = ModelChoice.objects.select_for_update().filter(pk=model_choice_id).first()
        if model is None:
            return
        rejected = dict(model.unsupported_params or {})
        rejected[param] = {"at": timezone.now().isoformat(), "message": storable(evidence)[:1000]}
        model.unsupported_params = rejected
        model.save(update_fields=["unsupported_params"])


def record_stateless_gateway(model_choice_id: int | None, evidence: str) -> None:
    """Remember that the gateway ignores previous_response_id for the model ("auto" mode).

    Only the first detection is kept: its evidence is what an admin needs to see.
    """
    if model_choice_id is None:
        return
    ModelChoice.objects.filter(pk=model_choice_id, stateless_detected_at__isnull=True).update(
        stateless_detected_at=timezone.now(), stateless_evidence=storable(evidence)[:2000]
    )


def replayed_output(items: list[dict]) -> list[dict]:
    """Return the output items worth keeping for later replays: none when the text says it all.

    An answer that is one message replays as its text; only tool calls and their
    outputs, or encrypted reasoning, need the items themselves.
    """
    if all(item.get("type") == "message" for item in items):
        return []
    return items


def storable(value):
    """Return `value` with what the database refuses removed: NUL and lone surrogates.

    PostgreSQL rejects NUL in text and JSON and an unpaired surrogate cannot be encoded
    at all; a gateway can send either, and the answer must still be saved.
    """
    if isinstance(value, str):
        if value.isascii():
            return value.replace("\x00", "")
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value


def record_answer_usage(
    plan: TurnPlan, state: AnswerState, message: Message, model_choice: ModelChoice | None
) -> int:
    """Record what each response of the answer cost and return the total tokens.

    Earlier rounds of a tool-calling turn count as tool rounds, and responses thrown
    away to ask again with the history (the gateway had forgotten it) as answers: the
    gateway billed them all the same. The last response counts
    with the gateway's own numbers when it sent them; as an estimate, marked as such,
    when the stream died or was stopped after the request reached the gateway; and not
    at all when the gateway refused the request outright.
    """
    responses = [(u, False, UsageRecord.Purpose.ANSWER) for u in state.discarded_usages]
    responses += [(u, False, UsageRecord.Purpose.TOOL_ROUND) for u in state.round_usages]
    if state.usage is not None:
        responses.append((state.usage, False, UsageRecord.Purpose.ANSWER))
    elif state.response_id or state.text:
        output = ledger.estimate_tokens(state.text)
        estimate = Usage(plan.input_estimate, 0, output, 0, plan.input_estimate + output)
        responses.append((estimate, True, UsageRecord.Purpose.ANSWER))
    for counts, estimated, purpose in responses:
        ledger.record_response_usage(
            counts,
            estimated=estimated,
            user_id=plan.user_id,
            conversation_id=plan.conversation_id,
            message=message,
            model_choice=model_choice,
            model_name=plan.model,
            purpose=purpose,
        )
    return sum(counts.total_tokens for counts, _, _ in responses)


def charge_orphan(orphan: Message) -> None:
    """Settle the hold of an answer whose process died, on an estimate of its use.

    The gateway's usage was lost with the process; the request did reach it, so the
    checkpointed text and the question are charged as an estimate, not forgotten.
    """
    hold = orphan.quota_hold
    if not hold:
        return
    input_tokens = hold.get("input_estimate", 0)
    output_tokens = ledger.estimate_tokens(orphan.text)
    owner = orphan.conversation.owner
    quotas.settle(
        quotas.Reservation(owner.pk, tuple(hold["counter_ids"]), hold["amount"], None),
        total_tokens=input_tokens + output_tokens,
    )
    ledger.record_response_usage(
        Usage(input_tokens, 0, output_tokens, 0, input_tokens + output_tokens),
        estimated=True,
        user_id=owner.pk,
        conversation_id=orphan.conversation_id,
        message=orphan,
        model_choice=None,
        model_name=orphan.model_name,
    )


def streaming_answer(user, message_id: int) -> Message | None:
    """Return the user's answer `message_id` if it is still streaming."""
    return (
        Message.objects.filter(
            conversation__in=Conversation.objects.for_user(user),
            pk=message_id,
            status=Message.Status.STREAMING,
        )
        .only("pk", "worker_channel", "conversation_id")
        .first()
    )


def recover_orphans(conversation_id: int | None = None) -> int:
    """Mark answers whose process died mid-stream as interrupted, keeping their text."""
    orphans = Message.objects.filter(
        status=Message.Status.STREAMING, updated_at__lt=timezone.now() - ORPHAN_AFTER
    )
    if conversation_id is not None:
        orphans = orphans.filter(conversation_id=conversation_id)
    recovered = 0
    for orphan in orphans.select_related("conversation__owner"):
        with transaction.atomic():
            claimed = Message.objects.filter(pk=orphan.pk, status=Message.Status.STREAMING).update(
                status=Message.Status.INTERRUPTED,
                error="The server restarted while this answer was being written.",
                error_code="interrupted",
                worker_channel="",
                quota_hold={},
            )
            if claimed:
                charge_orphan(orphan)
            recovered += claimed
    return recovered
