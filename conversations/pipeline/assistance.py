"""Which assistant a turn speaks as, and what it decides for the turn.

A conversation is bound to an assistant when it starts (the page sends the assistant's
id with the first message). Every later turn checks again that the owner may still use
it (in a group too, whoever sends): an assistant can be disabled, deleted, or shared
with fewer people while its conversations go on. Someone who lost it keeps reading,
and continues only once they choose to go on without it
(`assistants.views.leave_assistant`).

An assistant whose owner locked its options decides the model, reasoning effort and
web search of every turn, whatever the page sent.
"""

from __future__ import annotations

from dataclasses import replace

from django.utils.translation import gettext as _

from conversations.assistants.library import usable_assistant
from conversations.models import Assistant, Conversation, ModelChoice
from conversations.pipeline.admission import ModelUnavailable, Refused, choose_model
from conversations.pipeline.plans import TurnOptions

__all__ = [
    "AssistantUnavailable",
    "locked_model_id",
    "locked_options",
    "turn_assistant",
    "turn_model",
]


class AssistantUnavailable(Refused):
    """The conversation's assistant is no longer the user's to use; the page offers to
    continue without it."""


def turn_assistant(
    user, conversation: Conversation, options: TurnOptions, *, created: bool
) -> Assistant | None:
    """Return the assistant the turn speaks as, binding a new conversation to the one
    the page asked for; or refuse when the user may not use it (now)."""
    if created:
        if options.assistant_id is None:
            return None
        assistant = usable_assistant(user, options.assistant_id)
        if assistant is None:
            raise Refused(_("This assistant is not available to you."))
        conversation.assistant = assistant
        return assistant
    if conversation.assistant_id is None:
        return None
    # A group speaks as the owner's assistant: whether the owner may still use it
    # decides, not whether each member could pick it themselves.
    speaker = conversation.owner if conversation.owner_id != user.pk else user
    assistant = usable_assistant(speaker, conversation.assistant_id)
    if assistant is None:
        name = (
            Assistant.objects.filter(pk=conversation.assistant_id)
            .values_list("name", flat=True)
            .first()
        )
        raise AssistantUnavailable(
            _(
                "You can no longer use the assistant “%(name)s” here. Continue without "
                "the assistant to keep chatting."
            )
            % {"name": name or _("(deleted)")}
        )
    return assistant


def locked_options(assistant: Assistant | None, options: TurnOptions) -> TurnOptions:
    """Return the turn's options, with the assistant's own where its owner locked them."""
    if assistant is None or not assistant.lock_options:
        return options
    return replace(options, effort=assistant.reasoning_effort, web_search=assistant.web_search)


def locked_model_id(assistant: Assistant | None, model_id: int | None) -> int | None:
    """Return the model the turn asks for: the assistant's where its owner locked it."""
    if assistant is not None and assistant.lock_options and assistant.model_id is not None:
        return assistant.model_id
    return model_id


def turn_model(
    user,
    conversation: Conversation,
    model_id: int | None,
    assistant: Assistant | None,
    *,
    loaded: ModelChoice | None = None,
) -> tuple[ModelChoice, list]:
    """Return the turn's model and notices, as `admission.choose_model` decides, on the
    assistant's model where its owner locked it; a locked model the user may not use
    refuses the turn in words that say whose model it is."""
    locked = locked_model_id(assistant, model_id)
    try:
        return choose_model(user, conversation, locked, loaded=loaded)
    except ModelUnavailable:
        if locked == model_id or assistant is None:
            raise
        raise Refused(
            _(
                "The assistant “%(name)s” answers with a model that is not available to "
                "you. Ask its owner to change it, or continue without the assistant."
            )
            % {"name": assistant.name}
        ) from None
