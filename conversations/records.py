"""The database side of a turn: create its rows, plan its request, checkpoint, finish.

Plain synchronous functions, each one transaction, called from async code through
`in_database_thread`. Django's ORM does not run transactions in async code, and
keeping every write of a turn here makes the count of writes per answer easy to see:
two inserts and one conversation update to start, a checkpoint a second, one final
update. Every statement counts: a busy server runs these for every turn of every user
(tests/test_turn_queries.py pins how many a send takes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import attachments, quotas, reads, usage
from conversations.answer import AnswerState
from conversations.gateway.request import assistant_message, user_message
from conversations.gateway.response import Usage
from conversations.models import Attachment, Conversation, Message, ModelChoice, UsageRecord
from conversations.plans import SUMMARY_MODES, TurnOptions, TurnPlan
from conversations.tools import get_tool

__all__ = [
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
    with transaction.atomic():
        created = conversation_id is None
        if created:
            conversation = Conversation(owner=user)
        else:
            conversation = owned_conversation(user, conversation_id)
        check_concurrency(user)
        model, notices = choose_model(conversation, model_id)
        conversation.model = model
        changed = ["model"]
        if instructions is not None:
            conversation.instructions = instructions.strip()
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
            user, conversation, [*branch, question], model, worker_channel, options, changed
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
        check_concurrency(user)
        model, notices = choose_model(conversation, model_id)
        question = old.parent
        plan, _answer = start_answer(
            user, conversation, branch_ending_at(question), model, worker_channel, options
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
    """Save an edited question as a sibling of `message_id` and answer it afresh."""
    text = checked_text(text, images=False)
    with transaction.atomic():
        old = owned_message(user, message_id, role=Message.Role.USER)
        conversation = owned_conversation(user, old.conversation_id)
        check_concurrency(user)
        model, notices = choose_model(conversation, None)
        question = Message.objects.create(
            conversation=conversation, parent=old.parent, role=Message.Role.USER, text=text
        )
        plan, _answer = start_answer(
            user, conversation, branch_ending_at(question), model, worker_channel, options
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
) -> tuple[TurnPlan, Message]:
    """Hold the quota, create the empty answer to the last message of `branch`, show it.

    The conversation is written once, here: its new leaf and activity time, together
    with the `changed` fields the caller set (model, instructions).
    """
    estimate = estimate_input(conversation, branch)
    reservation = hold_quota(user, estimate, model.max_output_tokens)
    answer = new_answer(
        conversation,
        branch[-1],
        model,
        worker_channel,
        options,
        quota_hold={
            "counter_ids": list(reservation.counter_ids),
            "amount": reservation.amount,
            "input_estimate": estimate,
        },
    )
    conversation.current_leaf = answer
    conversation.updated_at = timezone.now()
    conversation.save(update_fields=["current_leaf", "updated_at", *changed])
    # An answer never has images of its own.
    answer.mark_without_attachments()
    plan = build_plan(conversation, branch, answer, model)
    return (
        replace(plan, reservation=reservation, max_output_tokens=reservation.max_output_tokens),
        answer,
    )


def estimate_input(conversation: Conversation, branch: list[Message]) -> int:
    """Return the tokens the instructions and the branch amount to, roughly."""
    return usage.estimate_tokens(
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


def hold_quota(user, input_estimate: int, max_output_tokens: int | None):
    """Hold the turn's worst case on the user's quota, or refuse it before any request.

    Runs inside the turn's transaction: if the turn is refused later, the hold goes too.
    The reservation's output cap (what the quota still allows) is what goes upstream.
    """
    try:
        return quotas.reserve(
            user=user, input_estimate=input_estimate, max_output_tokens=max_output_tokens
        )
    except quotas.QuotaExceeded as error:
        raise Refused(error.user_message) from None


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
    if model.supports_reasoning:
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
        web_search=options.web_search and model.supports_web_search,
        quota_hold=quota_hold or {},
    )


def check_concurrency(user) -> None:
    running = (
        Message.objects.filter(
            conversation__owner=user,
            status=Message.Status.STREAMING,
            updated_at__gte=timezone.now() - ORPHAN_AFTER,
        )
        .exclude(role=Message.Role.USER)
        .count()
    )
    limit = settings.CHAT_MAX_CONCURRENT_GENERATIONS
    if running >= limit:
        raise Refused(
            _(
                "You already have %(running)d answers being generated (the limit is %(limit)d). "
                "Wait for one to finish or stop it."
            )
            % {"running": running, "limit": limit}
        )


def choose_model(conversation: Conversation, model_id: int | None) -> tuple[ModelChoice, list]:
    """Return the model for this turn, and notices to show when it had to change."""
    enabled = ModelChoice.objects.enabled()
    if model_id is not None:
        chosen = enabled.filter(pk=model_id).first()
        if chosen is not None:
            return chosen, []
    if conversation.model is not None and conversation.model.enabled:
        return conversation.model, []
    default = enabled.default()
    if default is None:
        raise Refused(_("No models are available. Ask an administrator to enable one."))
    notices = []
    if conversation.model is not None and not conversation.model.enabled:
        notices.append(
            _("%(old)s is no longer available; this conversation continues on %(new)s.")
            % {"old": conversation.model.label, "new": default.label}
        )
    return default, notices


def build_plan(
    conversation: Conversation, branch: list[Message], answer: Message, model: ModelChoice
) -> TurnPlan:
    """Plan the request for `answer`, whose question is the last message of `branch`."""
    question = branch[-1]
    parent = branch[-2] if len(branch) > 1 else None
    store = settings.GATEWAY_STORE
    previous_id = ""
    if (
        store
        and parent is not None
        and parent.role == Message.Role.ASSISTANT
        and parent.status in CONTINUABLE
        and parent.response_id
    ):
        previous_id = parent.response_id
    load_images([question] if previous_id else branch)
    return TurnPlan(
        user_id=conversation.owner_id,
        conversation_id=conversation.pk,
        answer_id=answer.pk,
        model=model.upstream_id,
        model_choice_id=model.pk,
        instructions=conversation.instructions,
        store=store,
        previous_id=previous_id,
        new_input=(user_message(question.text, images_of(question)),),
        history=None if previous_id else tuple(history_items(branch)),
        max_output_tokens=model.max_output_tokens,
        reasoning_effort=answer.reasoning_effort,
        reasoning_summary=answer.reasoning_summary_mode,
        reasoning_model=model.supports_reasoning,
        tools=tools_of(model),
        web_search=answer.web_search,
        input_estimate=estimate_input(conversation, branch),
    )


def tools_of(model: ModelChoice) -> tuple[str, ...]:
    """Return the registered tools the admin enabled for the model."""
    if not model.supports_function_tools:
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


def replay_history(plan: TurnPlan) -> list[dict]:
    """Return the whole branch of `plan`'s answer as input items, for a replay."""
    question = Message.objects.get(pk=plan.answer_id).parent
    branch = branch_ending_at(question)
    load_images(branch)
    return history_items(branch)


def history_items(branch: list[Message]) -> list[dict]:
    """Return the branch as input items, for a turn that cannot continue upstream."""
    items: list[dict] = []
    for message in branch:
        if message.role == Message.Role.USER:
            items.append(user_message(message.text, images_of(message)))
        elif message.status in REPLAYABLE and (message.text or message.replay_items):
            if message.replay_items and message.status == Message.Status.COMPLETE:
                items.extend(message.replay_items)
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
                text=text, updated_at=now
            )


def finish_answer(plan: TurnPlan, state: AnswerState, *, previous_id: str) -> Message:
    """Write the answer's final state in one update, charge it, and return it."""
    outcome = state.outcome
    assert outcome is not None
    now = timezone.now()
    all_usage = [*state.round_usages, *([state.usage] if state.usage else [])]
    fields = {
        "text": state.text,
        "status": outcome.status,
        "error": outcome.error,
        "error_code": outcome.error_code,
        "response_id": state.response_id,
        "previous_response_id": previous_id,
        "replay_items": state.replay_items if not plan.store else [],
        "reasoning_summary": state.reasoning_text,
        "citations": state.citations,
        "tool_calls": state.tool_calls,
        "web_searches": [{"query": s["query"], "status": s["status"]} for s in state.searches],
        "input_tokens": sum(u.input_tokens for u in all_usage) if all_usage else None,
        "output_tokens": sum(u.output_tokens for u in all_usage) if all_usage else None,
        "reasoning_tokens": sum(u.reasoning_tokens for u in all_usage) if all_usage else None,
        "worker_channel": "",
        "quota_hold": {},
        "updated_at": now,
    }
    with transaction.atomic():
        # The conversation's activity time was set when the turn started; the sidebar
        # needs no second write for its end.
        Message.objects.filter(pk=plan.answer_id).update(**fields)
        message = Message.objects.get(pk=plan.answer_id)
        model_choice = ModelChoice.objects.filter(pk=plan.model_choice_id).first()
        spent = record_answer_usage(plan, state, message, model_choice)
        if plan.reservation is not None:
            quotas.settle(plan.reservation, total_tokens=spent)
    # The final bubble: an answer shows no images, its switcher needs its siblings, and
    # its label is the catalogue entry it was generated with, unless renamed upstream.
    message.mark_without_attachments()
    labels = {model_choice.upstream_id: model_choice.label} if model_choice else None
    return reads.with_siblings([message], labels=labels)[0]


def record_answer_usage(
    plan: TurnPlan, state: AnswerState, message: Message, model_choice: ModelChoice | None
) -> int:
    """Record what each response of the answer cost and return the total tokens.

    Earlier rounds of a tool-calling turn count as tool rounds. The last response counts
    with the gateway's own numbers when it sent them; as an estimate, marked as such,
    when the stream died or was stopped after the request reached the gateway; and not
    at all when the gateway refused the request outright.
    """
    responses = [(u, False, UsageRecord.Purpose.TOOL_ROUND) for u in state.round_usages]
    if state.usage is not None:
        responses.append((state.usage, False, UsageRecord.Purpose.ANSWER))
    elif state.response_id or state.text:
        output = usage.estimate_tokens(state.text)
        estimate = Usage(plan.input_estimate, 0, output, 0, plan.input_estimate + output)
        responses.append((estimate, True, UsageRecord.Purpose.ANSWER))
    for counts, estimated, purpose in responses:
        usage.record_response_usage(
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
    output_tokens = usage.estimate_tokens(orphan.text)
    owner = orphan.conversation.owner
    quotas.settle(
        quotas.Reservation(owner.pk, tuple(hold["counter_ids"]), hold["amount"], None),
        total_tokens=input_tokens + output_tokens,
    )
    usage.record_response_usage(
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
