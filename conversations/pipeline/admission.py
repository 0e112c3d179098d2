"""Whether a turn may start, and on what: the checks made before any row is written.

The input's limits, the user's right to the conversation or message, the rate and
concurrency limits (behind the user's turn gate), the model, and the quota hold. Each
refusal is a `Refused` with the words the user sees. Plain synchronous functions, run
inside the turn's transaction (`starts`): a refusal there rolls everything back.
"""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Func, OuterRef, Subquery
from django.utils.translation import gettext as _

from conversations.catalogue import access as catalogue_access
from conversations.models import Conversation, Message, ModelChoice, RunningAnswer, preferred
from conversations.pipeline.plans import TurnPlan
from conversations.usage import limits, quotas

__all__ = [
    "ModelUnavailable",
    "Refused",
    "admit_turn",
    "checked_instructions",
    "checked_text",
    "choose_model",
    "held",
    "hold_next_round",
    "hold_quota",
    "member_conversation",
    "member_message",
    "missing_conversation",
    "refuse_busy",
]


class Refused(Exception):
    """The turn cannot start; `user_message` says why, in words for the user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class ModelUnavailable(Refused):
    """The page asked for a model that was disabled or deleted: its picker is out of date."""


def checked_text(text: str, *, images: bool) -> str:
    text = text.strip()
    if not text and not images:
        raise Refused(_("Type a message first."))
    refuse_longer_than(
        settings.CHAT_MAX_MESSAGE_CHARS,
        text,
        _(
            "This message is %(length)s characters long; the limit is %(limit)s. "
            "Shorten it or split it into several messages."
        ),
    )
    return text


def checked_instructions(instructions: str) -> str:
    """Return the instructions stripped, or refuse them when longer than the setting.

    They go to the model with every turn of the conversation, so an unbounded text would
    cost its length in tokens each time.
    """
    instructions = instructions.strip()
    refuse_longer_than(
        settings.CHAT_MAX_INSTRUCTIONS_CHARS,
        instructions,
        _(
            "These instructions are %(length)s characters long; the limit is %(limit)s. "
            "Shorten them and send again."
        ),
    )
    return instructions


def refuse_longer_than(limit: int, text: str, message: str) -> None:
    """Refuse `text` past `limit` characters, with `message` naming its length and the limit."""
    if len(text) > limit:
        raise Refused(message % {"length": f"{len(text):,}", "limit": f"{limit:,}"})


def member_conversation(user, conversation_id: int) -> Conversation:
    """Return a conversation the user owns or is a member of, locked for this
    transaction, or refuse."""
    conversation = (
        Conversation.objects.for_member(user).select_for_update().filter(pk=conversation_id).first()
    )
    if conversation is None:
        raise missing_conversation()
    return conversation


def missing_conversation() -> Refused:
    """Return the refusal of a conversation that is not there or not the user's."""
    return Refused(_("This conversation does not exist."))


def member_message(user, message_id: int, *, role: str | None = None) -> Message:
    """Return a message of a conversation the user owns or is a member of, or refuse:
    members regenerate, edit and branch as the owner does."""
    found = Message.objects.filter(
        conversation__in=Conversation.objects.for_member(user), pk=message_id
    )
    if role is not None:
        found = found.filter(role=role)
    message = found.select_related("parent").first()
    if message is None or (role == Message.Role.ASSISTANT and message.parent is None):
        raise Refused(_("This message does not exist."))
    return message


def admit_turn(
    user, conversation_id: int | None, *, check_busy: bool = True
) -> tuple[Conversation, limits.Policy]:
    """Count the turn at the user's gate and return its conversation and the user's limits.

    Refuses a turn over the user's rate, while the conversation has an answer streaming,
    or while the user has too many. The conversation is the user's, locked, with its
    model (a new, unsaved one when `conversation_id` is None).

    Two answers streaming into one conversation would hang the second question below an
    unfinished answer; the page blocks Send meanwhile, this covers other tabs and races.
    The user's turn gate is locked first (`quotas.count_turn_start`), so parallel sends
    are counted one after another: without it, twenty at once all saw nothing streaming.
    The conversation is then read with what is running (one query, which starts after
    the lock, so it sees every turn started before); an answer whose process died does
    not count. Without `check_busy` the caller refuses a busy turn itself, once it knows
    whether the turn asks the model at all (a group member talking to the others does
    not wait for an answer to end).
    """
    policy = limits.policy_for(user)
    try:
        quotas.count_turn_start(user.pk, policy)
    except quotas.TurnRateExceeded as error:
        raise Refused(error.user_message) from None
    if conversation_id is None:
        conversation = Conversation(owner=user)
        conversation.answering, conversation.running = False, running_answers(user).count()
    else:
        conversation = turn_conversation(user, conversation_id)
    if check_busy:
        refuse_busy(answering=conversation.answering, running=conversation.running)
    return conversation, policy


def refuse_busy(*, answering: bool, running: int) -> None:
    """Refuse a turn while its conversation has an answer streaming, or while the user
    has as many streaming as the concurrency limit allows."""
    if answering:
        raise Refused(
            _(
                "An answer is still being written in this conversation. "
                "Wait for it to finish, or stop it."
            )
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


def running_answers(user):
    """Return the user's answers streaming in a live process."""
    return RunningAnswer.objects.alive().filter(
        owner=user, message__status=Message.Status.STREAMING
    )


def turn_conversation(user, conversation_id: int) -> Conversation:
    """Return the user's conversation (owned, or theirs as a member), locked, with its
    model and owner, whether an answer streams in it (`answering`, whoever asked) and
    how many of the user's do (`running`); or refuse."""
    running = running_answers(user).order_by()
    streaming = RunningAnswer.objects.alive().filter(message__status=Message.Status.STREAMING)
    conversation = (
        Conversation.objects.for_member(user)
        .select_for_update(of=("self",))
        .select_related("model", "owner")
        .filter(pk=conversation_id)
        .annotate(
            answering=Exists(streaming.order_by().filter(message__conversation=OuterRef("pk"))),
            running=Subquery(running.annotate(count=Func("pk", function="COUNT")).values("count")),
        )
        .order_by()
        .first()
    )
    if conversation is None:
        raise missing_conversation()
    return conversation


def choose_model(
    user, conversation: Conversation, model_id: int | None, *, loaded: ModelChoice | None = None
) -> tuple[ModelChoice, list]:
    """Return the model for this turn, and notices to show when it had to change.

    A model the page asked for by id that is now disabled, gone, or not open to the
    user's groups refuses the turn (`ModelUnavailable`) rather than answering with
    another model the person did not pick; only a turn that names no model (an edit)
    falls back to the user's default. A conversation whose model the user can no longer
    use continues on another one, with a notice saying so.

    The conversation's model came with it (`turn_conversation`) and what the user may
    use is cached (`catalogue.access`), so a turn on the conversation's model reads
    nothing; another model is one query unless the caller `loaded` it, and a fallback
    reads the enabled entries.
    """
    access = catalogue_access.access_for(user)
    current = conversation.model if conversation.model_id is not None else None
    if current is not None:
        catalogue_access.mark(current, access)
    if model_id is not None:
        chosen = current if model_id == conversation.model_id else None
        if chosen is None and loaded is not None and loaded.pk == model_id:
            chosen = loaded
        if chosen is None:
            chosen = ModelChoice.objects.filter(pk=model_id).first()
        if chosen is None:
            raise ModelUnavailable(_("That model is no longer available; pick another model."))
        catalogue_access.mark(chosen, access)
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
    elif current is not None and current.enabled and current.usable:
        chosen = current
    else:
        usable = [catalogue_access.mark(model, access) for model in ModelChoice.objects.enabled()]
        chosen = preferred([model for model in usable if model.usable])
        if chosen is None:
            raise Refused(_("No models are available. Ask an administrator to enable one."))
    notices = []
    member = conversation.pk is not None and conversation.owner_id != user.pk
    if member and current is not None and current.enabled and not current.usable:
        # The group's model is the owner's pick; this member's turns use one of theirs.
        notices.append(
            _(
                "%(old)s, this conversation's model, is not available to you, so %(new)s "
                "answers your messages. Pick another model below for your turns."
            )
            % {"old": current.label, "new": chosen.label}
        )
    elif current is not None and not (current.enabled and current.usable) and chosen != current:
        notices.append(
            _("%(old)s is no longer available; this conversation continues on %(new)s.")
            % {"old": current.label, "new": chosen.label}
        )
    return chosen, notices


def hold_quota(
    user, input_estimate: int, max_output_tokens: int | None, policy: limits.Policy | None = None
) -> quotas.Reservation:
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
    """Return what a running answer keeps of its hold, for recovery if its process dies."""
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
    moves the running answer's hold along, so recovery gives back the right amount if
    the process dies. `plan.reservation` is left open until this commits: if the
    database fails here, the final save still settles it.
    """
    current = replace(plan.reservation)
    with transaction.atomic():
        try:
            following = quotas.reserve_next_round(
                current, used_so_far=used_so_far, input_estimate=input_estimate
            )
        except quotas.QuotaExceeded:
            following = None
        RunningAnswer.objects.filter(pk=plan.answer_id).update(
            quota_hold=held(following, input_estimate) if following else {}
        )
    return following
