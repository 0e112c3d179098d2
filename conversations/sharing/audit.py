"""The audit trail of transcript reads: who opened which transcript, how, and from where.

Every read through a share link, every "continue in a new chat" and every admin review
leaves a `TranscriptAccess` row. The row copies the conversation's title and owner, so
it still says what was read after the conversation or its owner is deleted.
"""

from __future__ import annotations

import ipaddress

from conversations.models import Conversation, RetainedTranscript, ShareLink, TranscriptAccess
from conversations.sharing.transcripts import owner_name

__all__ = ["record_access"]


def record_access(
    request,
    via: str,
    *,
    conversation: Conversation | None = None,
    link: ShareLink | None = None,
    retained: RetainedTranscript | None = None,
) -> TranscriptAccess:
    """Write the audit row for the request's read of a transcript.

    The transcript is a live `conversation` (review), a `link`'s snapshot, or a
    `retained` copy of a deleted user's conversation.
    """
    conversation = conversation or (link.conversation if link else None)
    if conversation is not None:
        reference, title = conversation.pk, conversation.title
        owner = owner_name(conversation.owner)
    else:
        assert retained is not None
        reference, title, owner = retained.conversation_ref, retained.title, retained.owner_name
    viewer = request.user
    signed_in = viewer is not None and viewer.is_authenticated
    return TranscriptAccess.objects.create(
        via=via,
        conversation=conversation,
        conversation_ref=reference,
        conversation_title=title,
        owner_name=owner,
        share_link=link,
        retained=retained,
        viewer=viewer if signed_in else None,
        viewer_name=viewer.get_username() if signed_in else "",
        ip_address=valid_ip(request.META.get("REMOTE_ADDR")),
        user_agent=request.headers.get("User-Agent", "")[:300],
    )


def valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None
