"""Name a new conversation after its first answer.

A short, non-streaming request asks the conversation's own model for a title; if that
fails for any reason the first words of the question serve instead, so every
conversation gets a readable name in the sidebar.
"""

from __future__ import annotations

import logging

from django.db import transaction

from conversations import broadcast, quotas, usage
from conversations.dbthreads import in_database_thread
from conversations.gateway.errors import GatewayError
from conversations.gateway.request import ResponseRequest
from conversations.gateway.response import Usage
from conversations.models import Conversation, UsageRecord
from conversations.plans import TurnPlan
from conversations.upstream import get_client

logger = logging.getLogger(__name__)

__all__ = ["fallback_title", "generate_title"]

TITLE_INSTRUCTIONS = (
    "Write a title of at most six words for a conversation that starts with the user's "
    "message below. Use the language of the message. Reply with the title only, "
    "without quotes or a final full stop."
)
TITLE_MAX_CHARS = 80
# Quotes a model may wrap a title in, Western and CJK.
QUOTES = "\"' \u201c\u201d\u2018\u2019\u300c\u300d"


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


async def generate_title(plan: TurnPlan, answer_text: str) -> str:
    """Ask the model for a title, fall back to the question, save, and tell the tabs."""
    question = plan.first_user_text
    spent = None
    try:
        response = await get_client().create(
            ResponseRequest(
                model=plan.model,
                input=question[:2000],
                instructions=TITLE_INSTRUCTIONS,
                store=False,
                max_output_tokens=32,
            )
        )
        title = clean_title(response.output_text) or fallback_title(question)
        spent = response.usage
    except GatewayError as error:
        logger.info("title request failed (%s); using the question", type(error).__name__)
        title = fallback_title(question)
    saved = await in_database_thread(record_title)(plan, title, spent)
    if saved:
        await broadcast.conversation_changed(plan.user_id, plan.conversation_id)
    return title


def record_title(plan: TurnPlan, title: str, spent: Usage | None) -> bool:
    """Save the title and charge the request that wrote it (`spent`), in one transaction.

    Return whether the title was saved: not when the user named the conversation
    meanwhile, or deleted it. The tokens are charged either way; they were spent.
    """
    with transaction.atomic():
        saved = save_title(plan.conversation_id, title)
        if spent is not None:
            gone = not saved and not Conversation.objects.filter(pk=plan.conversation_id).exists()
            charge_title(plan, spent, conversation_id=None if gone else plan.conversation_id)
    return saved


def charge_title(plan: TurnPlan, spent: Usage, *, conversation_id: int | None) -> None:
    """Count the title request against the user's usage and quota, like any response."""
    usage.record_response_usage(
        spent,
        estimated=False,
        user_id=plan.user_id,
        conversation_id=conversation_id,
        message=None,
        model_choice=None,
        model_name=plan.model,
        purpose=UsageRecord.Purpose.TITLE,
    )
    quotas.charge(user_id=plan.user_id, total_tokens=spent.total_tokens)


def save_title(conversation_id: int, title: str) -> bool:
    """Save the title unless the user named the conversation meanwhile."""
    return bool(Conversation.objects.filter(pk=conversation_id, title="").update(title=title))
