"""Name a new conversation after its first question.

The title is written by a cheap model the admin picks (`ModelChoice.use_for_titles`),
not by the conversation's own model: six words need no reasoning model, and a
reasoning model spends tens of tokens thinking before it writes them. The request is
the site's cost, not the user's: it is recorded as usage with purpose "title" but never
counted against the user's quota, and it is not made at all for a user who has used up
their quota. When no model may write it, or the request fails, the first words of the
question serve instead; a question of images only is named after its images, so every
conversation gets a readable name in the sidebar.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, override

from conversations.catalogue.upstream import get_client
from conversations.gateway.errors import GatewayError
from conversations.gateway.request import ResponseRequest
from conversations.gateway.response import Usage
from conversations.models import (
    Attachment,
    Conversation,
    Message,
    ModelChoice,
    UsageRecord,
    UserPreference,
)
from conversations.pipeline import broadcast
from conversations.pipeline.dbthreads import in_database_thread
from conversations.pipeline.plans import TurnPlan
from conversations.usage import ledger, quotas

logger = logging.getLogger(__name__)

__all__ = ["fallback_title", "generate_title", "title_model"]

TITLE_INSTRUCTIONS = (
    "Write a title of at most six words for a conversation that starts with the user's "
    "message below. Use the language of the message. Reply with the title only, "
    "without quotes or a final full stop."
)
TITLE_MAX_CHARS = 80
# Quotes a model may wrap a title in, Western and CJK.
QUOTES = "\"' \u201c\u201d\u2018\u2019\u300c\u300d"


@dataclass(frozen=True, slots=True)
class TitleJob:
    """What naming one conversation takes: the words to name, and who may write it.

    `model` is None when no request is to be made: no words to send, no model
    enabled, or the user is out of quota. `fallback` is the title used then.
    """

    question: str
    fallback: str
    model: ModelChoice | None


def fallback_title(text: str) -> str:
    """Return the question's first words, cut at a word boundary where there is one."""
    words = " ".join(text.split())
    if len(words) <= 48:
        return words
    cut = words[:48]
    if " " in cut[24:]:
        cut = cut[: cut.rfind(" ")]
    return cut + "…"


def clean_title(text: str) -> str:
    title = " ".join(text.split()).strip(QUOTES)
    return title.rstrip(".。")[:TITLE_MAX_CHARS]


def title_model() -> ModelChoice | None:
    """Return the model that writes titles: the cheapest marked one, else the cheapest enabled.

    Cheapest by input plus output price, ties by catalogue position. A reasoning model
    is chosen only when no other candidate is enabled: it would think before writing
    six words, at many times the cost. A model the gateway does not know is passed over.
    """
    # Any enabled model, whoever owns the conversation: the app writes titles, the user
    # picks no model for them, so the groups a model is limited to do not apply here.
    enabled = [m for m in ModelChoice.objects.enabled() if m.unknown_to_gateway_at is None]
    candidates = [model for model in enabled if model.use_for_titles] or enabled
    return min(
        candidates,
        key=lambda model: (
            model.supports_reasoning,
            model.price_input + model.price_output,
            model.position,
            model.pk,
        ),
        default=None,
    )


def image_title(names: list[str]) -> str:
    """Return "Image: photo.png" (or "Images: a.png, b.png") for a question of images only."""
    return ngettext("Image: %(names)s", "Images: %(names)s", len(names)) % {
        "names": ", ".join(names)
    }


def out_of_quota(user_id: int) -> bool:
    """Return whether the user has used up a limit today or this month."""
    user = get_user_model()(pk=user_id)
    return any(status.remaining == 0 for status in quotas.status(user))


def title_job(plan: TurnPlan, answer_text: str = "") -> TitleJob:
    """Decide what the title request sends, and whether it is made at all.

    A question of images only has no words to send: it is named after its images, or,
    without any, after the answer's first words.
    """
    question = plan.first_user_text
    if not question and plan.user_message_id:
        question = (
            Message.objects.filter(pk=plan.user_message_id).values_list("text", flat=True).first()
            or ""
        )
    if not question.strip():
        images = Attachment.objects.filter(message_id=plan.user_message_id)
        names = [str(image) for image in images]
        language = (
            UserPreference.objects.filter(user_id=plan.user_id)
            .values_list("language", flat=True)
            .first()
        )
        with override(language or settings.LANGUAGE_CODE):
            fallback = image_title(names) if names else fallback_title(answer_text) or _("Untitled")
        return TitleJob(question="", fallback=fallback, model=None)
    fallback = fallback_title(question)
    if out_of_quota(plan.user_id):
        return TitleJob(question, fallback, model=None)
    return TitleJob(question, fallback, model=title_model())


async def generate_title(plan: TurnPlan, answer_text: str) -> str:
    """Ask the title model for a title, fall back to the question, save, and tell the tabs.

    `answer_text` is never sent (the question alone names the conversation, for less);
    it names a conversation whose question has neither words nor images.
    """
    job = await in_database_thread(title_job)(plan, answer_text)
    title, spent = job.fallback, None
    if job.model is not None:
        try:
            response = await get_client().create(
                ResponseRequest(
                    model=job.model.upstream_id,
                    input=job.question[:2000],
                    instructions=TITLE_INSTRUCTIONS,
                    store=False,
                    max_output_tokens=32,
                )
            )
            title = clean_title(response.output_text) or job.fallback
            spent = response.usage
        except GatewayError as error:
            logger.info("title request failed (%s); using the question", type(error).__name__)
    saved = await in_database_thread(record_title)(plan, title, spent, model=job.model)
    if saved:
        await broadcast.conversation_changed(plan.user_id, plan.conversation_id)
    return title


def record_title(
    plan: TurnPlan, title: str, spent: Usage | None, *, model: ModelChoice | None = None
) -> bool:
    """Save the title and record the request that wrote it (`spent`), in one transaction.

    Return whether the title was saved: not when the user named the conversation
    meanwhile, or deleted it. The usage is recorded either way; it was spent.
    """
    with transaction.atomic():
        saved = save_title(plan.conversation_id, title)
        if spent is not None:
            gone = not saved and not Conversation.objects.filter(pk=plan.conversation_id).exists()
            record_title_usage(
                plan,
                spent,
                model=model,
                conversation_id=None if gone else plan.conversation_id,
            )
    return saved


def record_title_usage(
    plan: TurnPlan, spent: Usage, *, model: ModelChoice | None, conversation_id: int | None
) -> None:
    """Record the title request as usage with purpose "title", outside the user's quota.

    The user did not ask for the title and cannot turn it off, so it must never be
    what refuses their next message: no reservation, so the quota is left alone.
    """
    ledger.record_spending(
        [ledger.Spent(spent, purpose=UsageRecord.Purpose.TITLE)],
        reservation=None,
        user_id=plan.user_id,
        conversation_id=conversation_id,
        message=None,
        model_choice=model,
        model_name=model.upstream_id if model else plan.model,
    )


def save_title(conversation_id: int, title: str) -> bool:
    """Save the title unless the user named the conversation meanwhile."""
    return bool(Conversation.objects.filter(pk=conversation_id, title="").update(title=title))
