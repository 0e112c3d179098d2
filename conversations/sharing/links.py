"""Share links: the owner makes, updates and revokes them; a reader opens them.

A share link freezes the conversation's visible branch as a list of message ids, so the
owner can keep chatting without the shared transcript changing; "update" takes a new
snapshot. Whoever opens a link sees those messages and their images, nothing else of
the owner's. The rest of the feature builds on this module: `transcripts` (what the
page shows), `continuing` (copying a snapshot into the reader's own chat), `audit`
(who read what), `retention` (deleted users' conversations kept for review) and
`pages` (the transcript page, for the share views and the admin alike).
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from conversations.attachments import images as attachments
from conversations.models import Attachment, Conversation, Message, ShareLink, SharingPolicy

__all__ = [
    "EXPIRY_CHOICES",
    "LinkUnavailable",
    "SharingError",
    "SignInRequired",
    "conversation_links",
    "create_link",
    "open_link",
    "owned_link",
    "revoke",
    "shared_image",
    "snapshot_ids",
    "snapshot_messages",
    "update_snapshot",
]

# What the share dialog offers: form value -> (label, lifetime).
EXPIRY_CHOICES: dict[str, tuple[str, datetime.timedelta | None]] = {
    "": (gettext_lazy("Never"), None),
    "1": (gettext_lazy("In 1 day"), datetime.timedelta(days=1)),
    "7": (gettext_lazy("In 7 days"), datetime.timedelta(days=7)),
    "30": (gettext_lazy("In 30 days"), datetime.timedelta(days=30)),
}
SHARING_OFF = gettext_lazy("Sharing is turned off on this site.")


class SharingError(Exception):
    """A share action was refused; `user_message` says why in plain words."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class LinkUnavailable(Exception):
    """No such link, or it was revoked, expired, its owner is gone, or sharing is off."""


class SignInRequired(Exception):
    """The link is for signed-in team members and the visitor is anonymous."""


# --- The owner's side --------------------------------------------------------------------


def snapshot_ids(conversation: Conversation) -> list[int]:
    """Return the ids of the visible branch, root first, up to its last settled message.

    An answer still being written is left out with its question: a snapshot holds only
    text that will not change under the reader.
    """
    branch = conversation.visible_branch()
    if branch and branch[-1].is_streaming:
        branch.pop()
        if branch and branch[-1].role == Message.Role.USER:
            branch.pop()
    return [message.pk for message in branch if not message.is_streaming]


def create_link(
    *,
    conversation: Conversation,
    visibility: str,
    expires: str = "",
    allow_downloads: bool = False,
) -> ShareLink:
    """Share the conversation as it stands now; refuse what the site policy forbids.

    `allow_downloads`: readers may download the files attached to its questions (the
    owner chooses; by default the transcript names them only).
    """
    mode = SharingPolicy.load().mode
    if mode == SharingPolicy.Mode.OFF:
        raise SharingError(str(SHARING_OFF))
    if visibility not in ShareLink.Visibility.values:
        raise SharingError(_("Choose who can open the link."))
    if visibility == ShareLink.Visibility.PUBLIC and mode == SharingPolicy.Mode.TEAM:
        raise SharingError(_("On this site, links open only for people signed in to chatweb."))
    if expires not in EXPIRY_CHOICES:
        raise SharingError(_("Choose when the link expires."))
    ids = snapshot_ids(conversation)
    if not ids:
        raise SharingError(_("There is nothing to share yet: wait for the first answer."))
    now = timezone.now()
    lifetime = EXPIRY_CHOICES[expires][1]
    return ShareLink.objects.create(
        conversation=conversation,
        visibility=visibility,
        message_ids=ids,
        snapshot_at=now,
        created_at=now,
        expires_at=now + lifetime if lifetime else None,
        allow_downloads=allow_downloads,
    )


def update_snapshot(link: ShareLink) -> ShareLink:
    """Move the link's snapshot to the conversation's latest settled message."""
    if link.revoked_at is not None:
        raise SharingError(_("This link was revoked; create a new one."))
    if SharingPolicy.load().mode == SharingPolicy.Mode.OFF:
        raise SharingError(str(SHARING_OFF))
    link.message_ids = snapshot_ids(link.conversation) or link.message_ids
    link.snapshot_at = timezone.now()
    link.save(update_fields=["message_ids", "snapshot_at"])
    return link


def revoke(link: ShareLink, *, by) -> ShareLink:
    """Stop the link for good; revoking twice keeps the first time and person."""
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.revoked_by = by
        link.save(update_fields=["revoked_at", "revoked_by"])
    return link


def owned_link(user, link_id: int) -> ShareLink | None:
    """Return the user's own link `link_id`, or None (the caller answers 404)."""
    return (
        ShareLink.objects.for_owner(user).select_related("conversation").filter(pk=link_id).first()
    )


def conversation_links(conversation: Conversation) -> list[ShareLink]:
    """Return the conversation's links that were not revoked, newest first."""
    return list(conversation.share_links.filter(revoked_at__isnull=True))


# --- The reader's side ---------------------------------------------------------------


def open_link(token: str, user) -> ShareLink:
    """Return the link `token` names if `user` may read it now.

    Raise LinkUnavailable for an unknown, revoked or expired link, a link whose owner is
    no longer active, or when sharing is off; SignInRequired when an anonymous visitor
    opens a team link (or any link, when the site allows only team links).
    """
    mode = SharingPolicy.load().mode
    link = (
        ShareLink.objects.select_related("conversation__owner", "conversation__model")
        .filter(token=token)
        .first()
    )
    if (
        link is None
        or mode == SharingPolicy.Mode.OFF
        or not link.is_open
        or not link.conversation.owner.is_active
    ):
        raise LinkUnavailable
    team_only = link.visibility == ShareLink.Visibility.TEAM or mode == SharingPolicy.Mode.TEAM
    if team_only and not (user.is_authenticated and user.is_active):
        raise SignInRequired
    return link


def snapshot_messages(link: ShareLink) -> list[Message]:
    """Return the snapshot's messages in order, without the owner's token counts."""
    found = {
        message.pk: message
        for message in Message.objects.filter(
            conversation_id=link.conversation_id, pk__in=link.message_ids
        ).prefetch_related("attachments")
    }
    messages = [found[pk] for pk in link.message_ids if pk in found]
    for message in messages:
        # Per-answer token counts are the owner's usage, which sharing never shows.
        message.input_tokens = message.output_tokens = message.reasoning_tokens = None
    return messages


def shared_image(link: ShareLink, user, attachment_id: int) -> Attachment | None:
    """Return the image (or the document, if the link allows downloads) if it belongs
    to a message of the link's snapshot."""
    found = attachments.viewable(user, attachment_id, shown_messages=link.message_ids)
    if found is not None and found.is_document and not link.allow_downloads:
        return None
    return found
