"""Name a new conversation after its first question.

The title is written by a cheap model the admin picks (`ModelChoice.use_for_titles`),
not by the conversation's own model: six words need no reasoning model, and a
reasoning model spends tens of tokens thinking before it writes them. The request is
the site's cost, not the user's: it is recorded as usage with purpose "title" but never
counted against the user's quota, and it is not made at all for a user who has used up
their quota. When no model may write it, or the request fails, the first words of the
question serve instead; a question of images only is named after its images, so every
conversation gets a readable name in the sidebar.

Naming is off the answer's path: the generation starts it as a task of its own once the
answer is saved and shown (`name_conversation`), so a slow title model delays neither
the final bubble nor the next turn nor a deploy's drain. Title requests are limited per
process (`TitleRequests`); past the limit no request is made and the conversation is
named from its first words at once, rather than waiting: a burst of new conversations
must not queue requests at the gateway beside the answers people are waiting for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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
from conversations.pipeline.socketlimits import FrameBudget
from conversations.usage import ledger, quotas

logger = logging.getLogger(__name__)

__all__ = [
    "TitleRequests",
    "fallback_title",
    "generate_title",
    "name_conversation",
    "title_model",
]

TITLE_INSTRUCTIONS = (
    "Write a title of at most six words for a conversation that starts with the user's "
    "message below. Use the language of the message. Reply with the title only, "
    "without quotes or a final full stop."
)
TITLE_MAX_CHARS = 80
# Quotes a model may wrap a title in, Western and CJK.
QUOTES = "\"' \u201c\u201d\u2018\u2019\u300c\u300d"
# Title requests one process makes: this many at once, this many a second on average,
# and a burst of this many (a class opening new chats together). Past that, first words.
TITLE_REQUESTS_AT_ONCE = 4
TITLE_REQUESTS_PER_SECOND = 2.0
TITLE_REQUESTS_BURST = 20


class TitleRequests:
    """The title requests this process may make: a few at once, a few a second.

    Over the limit a title is not deferred but skipped (`generate_title` then names the
    conversation from its first words): deferred requests would pile up exactly when
    the gateway is busiest, and a title that arrives minutes late helps no one.
    """

    def __init__(
        self,
        *,
        at_once: int = TITLE_REQUESTS_AT_ONCE,
        per_second: float = TITLE_REQUESTS_PER_SECOND,
        burst: int = TITLE_REQUESTS_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.at_once = at_once
        self.in_flight = 0
        # The sockets' token bucket, here counting requests rather than frames.
        self.budget = FrameBudget(per_second, burst, clock=clock)

    def admit(self) -> bool:
        """Take a place for one request; False when the process has made enough."""
        if self.in_flight >= self.at_once or not self.budget.take():
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        """Give back the place of a request that ended, however it ended."""
        self.in_flight -= 1


# One per process: every generation of the process names its conversations through it.
title_requests = TitleRequests()


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


async def name_conversation(plan: TurnPlan, answer_text: str) -> None:
    """Name a new conversation, logging rather than raising: it runs as a task of its own."""
    try:
        await generate_title(plan, answer_text)
    except Exception:
        logger.exception("could not name conversation %s", plan.conversation_id)


async def generate_title(plan: TurnPlan, answer_text: str) -> str:
    """Ask the title model for a title, fall back to the question, save, and tell the tabs.

    `answer_text` is never sent (the question alone names the conversation, for less);
    it names a conversation whose question has neither words nor images.
    """
    job = await in_database_thread(title_job)(plan, answer_text)
    title, spent = job.fallback, None
    if job.model is not None:
        title, spent = await ask_for_title(job)
    saved = await in_database_thread(record_title)(plan, title, spent, model=job.model)
    if saved:
        await broadcast.conversation_changed(
            plan.user_id, plan.conversation_id, others=list(plan.names)
        )
    return title


async def ask_for_title(job: TitleJob) -> tuple[str, Usage | None]:
    """Return the title model's title and what it cost, or the fallback and None.

    No request is made when this process has made as many as it may (`title_requests`).
    """
    requests = title_requests  # the one this request takes its place from, and gives back to
    if not requests.admit():
        logger.info("title requests at their limit; using the question")
        return job.fallback, None
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
    except GatewayError as error:
        logger.info("title request failed (%s); using the question", type(error).__name__)
        return job.fallback, None
    finally:
        requests.release()
    return clean_title(response.output_text) or job.fallback, response.usage


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
