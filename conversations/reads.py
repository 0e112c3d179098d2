"""Read-side queries for pages and sockets, each authorised through `for_user`.

Synchronous, for views and for `database_sync_to_async`. Reading a conversation also
settles answers whose process died mid-stream (see `records.recover_orphans`), so
nobody watches a "generating" bubble that will never finish.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator

from conversations import records
from conversations.models import Conversation, Message, ModelChoice

__all__ = ["TranscriptView", "conversation", "message", "messages", "sidebar", "transcript"]

SIDEBAR_PAGE_SIZE = 50


@dataclass(frozen=True)
class TranscriptView:
    conversation: Conversation
    messages: list[Message]

    @property
    def streaming(self) -> list[Message]:
        return [m for m in self.messages if m.is_streaming]


def conversation(user, conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.for_user(user).select_related("model").filter(pk=conversation_id)
    ).first()


def transcript(user, conversation_id: int) -> TranscriptView | None:
    found = conversation(user, conversation_id)
    if found is None:
        return None
    records.recover_orphans(found.pk)
    return TranscriptView(found, found.visible_branch())


def message(user, message_id: int) -> Message | None:
    return (
        Message.objects.filter(conversation__in=Conversation.objects.for_user(user), pk=message_id)
        .prefetch_related("attachments")
        .first()
    )


def messages(user, message_ids: list[int | None]) -> list[Message]:
    """Return the user's messages among `message_ids`, oldest first."""
    wanted = [pk for pk in message_ids if pk is not None]
    return list(
        Message.objects.filter(conversation__in=Conversation.objects.for_user(user), pk__in=wanted)
        .order_by("created_at", "pk")
        .prefetch_related("attachments")
    )


def sidebar(user, page_number: int = 1):
    """Return one page of the user's conversations, most recent activity first."""
    conversations = (
        Conversation.objects.for_user(user)
        .filter(archived=False)
        .only("pk", "title", "updated_at")
        .order_by("-updated_at", "-pk")
    )
    return Paginator(conversations, SIDEBAR_PAGE_SIZE).get_page(page_number)


def model_choices() -> list[ModelChoice]:
    return list(ModelChoice.objects.enabled())
