"""Retention: a frozen copy of a deleted user's conversations, for admin review.

When a user is deleted, their conversations (and so their links) go with them, unless
RETAIN_DELETED_USER_CONVERSATIONS keeps a `RetainedTranscript` of each: the visible
branch as JSON, which outlives the rows it was made from. Its images are not kept.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conversations.models import Conversation, Message, RetainedTranscript
from conversations.sharing.transcripts import Transcript, model_label, owner_name, transcript

__all__ = [
    "retain_conversations",
    "retain_deleted_users_conversations",
    "retained_transcript",
]


def frozen(message: Message) -> dict:
    """Return a message as JSON, for a transcript that must outlive its rows."""
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "status": message.status,
        "error": message.error,
        "error_code": message.error_code,
        "model_name": message.model_name,
        "reasoning_effort": message.reasoning_effort,
        "reasoning_summary": message.reasoning_summary,
        "citations": message.citations,
        "tool_calls": message.tool_calls,
        "web_searches": message.web_searches,
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "reasoning_tokens": message.reasoning_tokens,
        "created_at": message.created_at.isoformat(),
        "images": [
            {"name": image.original_name, "width": image.width, "height": image.height}
            for image in message.attachments.all()
        ],
    }


def thawed(data: dict) -> Message:
    """Return an unsaved Message the chat's message partial can render."""
    fields = {key: value for key, value in data.items() if key not in ("id", "images")}
    fields["created_at"] = parse_datetime(data["created_at"])
    # The images were deleted with the account: the transcript shows none (its
    # `message_views(images=False)`), so nothing asks for this message's attachments.
    return Message(pk=data["id"], **fields)


def retain_deleted_users_conversations(sender, instance, **kwargs) -> None:
    """The user model's pre_delete receiver: freeze their conversations for review."""
    retain_conversations(instance)


def retain_conversations(user) -> int:
    """Keep a frozen copy of each of `user`'s conversations, if the setting says so.

    Called from the user's pre_delete signal, inside the deletion's transaction: the
    copies exist exactly when the deletion commits. Returns how many were kept.
    """
    if not settings.RETAIN_DELETED_USER_CONVERSATIONS:
        return 0
    now = timezone.now()
    retained = [
        RetainedTranscript(
            conversation_ref=conversation.pk,
            owner_ref=user.pk,
            owner_name=owner_name(user),
            title=conversation.title,
            model_label=model_label(conversation, []),
            messages=[frozen(message) for message in conversation.visible_branch()],
            conversation_created_at=conversation.created_at,
            conversation_updated_at=conversation.updated_at,
            retained_at=now,
        )
        for conversation in Conversation.objects.filter(owner=user).select_related("model")
    ]
    RetainedTranscript.objects.bulk_create(retained)
    return len(retained)


def retained_transcript(retained: RetainedTranscript) -> Transcript:
    """Return the frozen copy as it stood when the account was deleted."""
    return transcript(
        [thawed(data) for data in retained.messages],
        retained=retained,
        as_of=retained.conversation_updated_at,
    )
