"""Shared transcripts: snapshot links, continuing a shared chat, admin review and its audit.

A share link freezes the conversation's visible branch as a list of message ids, so the
owner can keep chatting without the shared transcript changing; "update" takes a new
snapshot. Whoever opens a link sees those messages and their images, nothing else of
the owner's. Every read through a link or through admin review leaves a
`TranscriptAccess` row. When a user is deleted, their conversations (and so their
links) go with them, unless RETAIN_DELETED_USER_CONVERSATIONS keeps a frozen copy of
each for admin review (`RetainedTranscript`).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from conversations.attachments import images as attachments
from conversations.history import reads
from conversations.models import (
    Attachment,
    Conversation,
    Message,
    RetainedTranscript,
    ShareLink,
    SharingPolicy,
    TranscriptAccess,
)

__all__ = [
    "EXPIRY_CHOICES",
    "LinkUnavailable",
    "SharingError",
    "SignInRequired",
    "Transcript",
    "continue_in_new_chat",
    "conversation_links",
    "create_link",
    "open_link",
    "owned_link",
    "owner_name",
    "record_access",
    "retain_conversations",
    "retained_transcript",
    "review_transcript",
    "revoke",
    "shared_image",
    "shared_transcript",
    "snapshot_ids",
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


@dataclass(frozen=True, slots=True)
class Version:
    """Where a message stands among the alternatives at its place in the tree.

    An edited question and the original are versions of one question; so are a
    regenerated answer and the first. `on_show` is the version the owner has on screen.
    """

    position: int
    count: int
    on_show: bool


@dataclass(frozen=True)
class Transcript:
    """What the transcript page shows, whichever way it was reached.

    `versions` labels the messages that have alternatives, by message id: only admin
    review shows more than one branch.
    """

    title: str
    owner_name: str
    model_label: str
    started_at: datetime.datetime
    as_of: datetime.datetime | None
    messages: list[Message]
    versions: dict[int, Version] = field(default_factory=dict)


def owner_name(user) -> str:
    return user.get_full_name() or user.get_username()


def model_label(conversation: Conversation, messages: list[Message]) -> str:
    """Return the conversation's model by name: its catalogue entry, else the last answer's."""
    if conversation.model is not None:
        return conversation.model.label
    answers = [
        getattr(m, "model_label", m.model_name)
        for m in messages
        if m.role == Message.Role.ASSISTANT and m.model_name
    ]
    return answers[-1] if answers else ""


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


def create_link(*, conversation: Conversation, visibility: str, expires: str = "") -> ShareLink:
    """Share the conversation as it stands now; refuse what the site policy forbids."""
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


def shared_transcript(link: ShareLink) -> Transcript:
    conversation = link.conversation
    messages = reads.with_model_labels(snapshot_messages(link))
    return Transcript(
        title=str(conversation),
        owner_name=owner_name(conversation.owner),
        model_label=model_label(conversation, messages),
        started_at=conversation.created_at,
        as_of=link.snapshot_at,
        messages=messages,
    )


def shared_image(link: ShareLink, user, attachment_id: int) -> Attachment | None:
    """Return the image if it belongs to a message of the link's snapshot."""
    return attachments.viewable(user, attachment_id, shown_messages=link.message_ids)


def copy_message(message: Message, *, conversation: Conversation, parent: Message | None):
    """Copy what the reader saw; response ids and usage stay with the owner."""
    return Message.objects.create(
        conversation=conversation,
        parent=parent,
        role=message.role,
        text=message.text,
        status=message.status,
        error=message.error,
        error_code=message.error_code,
        model_name=message.model_name,
        reasoning_effort=message.reasoning_effort,
        reasoning_summary=message.reasoning_summary,
        citations=message.citations,
        tool_calls=message.tool_calls,
        web_searches=message.web_searches,
        created_at=message.created_at,
    )


def copy_image(image: Attachment, *, owner, message: Message) -> Attachment:
    """Store a new file with the image's bytes, owned by `owner`."""
    copy = Attachment(
        owner=owner,
        message=message,
        content_type=image.content_type,
        original_name=image.original_name,
        size=image.size,
        width=image.width,
        height=image.height,
    )
    with image.file.storage.open(image.file.name, "rb") as source:
        copy.file.save("upload", File(source), save=False)
    try:
        copy.save()
    except BaseException:
        copy.file.storage.delete(copy.file.name)
        raise
    return copy


def continue_in_new_chat(*, link: ShareLink, user) -> Conversation:
    """Copy the snapshot into a new conversation of `user`'s, as one linear branch.

    The copies carry no response ids, so the first turn replays the whole history: the
    owner's ids name responses in the owner's gateway session. Instructions are not
    copied; the transcript never showed them. Images become the reader's own files.
    """
    source = link.conversation
    messages = snapshot_messages(link)
    copied_files: list[Attachment] = []
    try:
        with transaction.atomic():
            model = source.model if source.model and source.model.enabled else None
            conversation = Conversation.objects.create(owner=user, title=source.title, model=model)
            parent = None
            for message in messages:
                parent = copy_message(message, conversation=conversation, parent=parent)
                for image in message.attachments.all():
                    copied_files.append(copy_image(image, owner=user, message=parent))
    except BaseException:
        # The rows rolled back; the files they pointed at are not in any transaction.
        for image in copied_files:
            image.file.storage.delete(image.file.name)
        raise
    return conversation


# --- Admin review and retention --------------------------------------------------------


def review_transcript(conversation: Conversation) -> Transcript:
    """Return every message of the conversation, not only the branch on the owner's screen.

    Reviewers look for what was actually sent, edited-away questions and regenerated
    answers included. Each branch follows the message it continues (depth first, older
    versions first), and every message with alternatives carries its `Version`.
    """
    shown = {message.pk for message in conversation.visible_branch(attachments=False)}
    children: dict[int | None, list[Message]] = {}
    for message in conversation.messages.order_by("created_at", "pk").prefetch_related(
        "attachments"
    ):
        children.setdefault(message.parent_id, []).append(message)
    messages: list[Message] = []
    versions: dict[int, Version] = {}
    waiting = list(reversed(children.get(None, [])))
    while waiting:
        message = waiting.pop()
        siblings = children[message.parent_id]
        if len(siblings) > 1:
            versions[message.pk] = Version(
                siblings.index(message) + 1, len(siblings), message.pk in shown
            )
        messages.append(message)
        waiting.extend(reversed(children.get(message.pk, [])))
    reads.with_model_labels(messages)
    return Transcript(
        title=str(conversation),
        owner_name=owner_name(conversation.owner),
        model_label=model_label(conversation, messages),
        started_at=conversation.created_at,
        as_of=conversation.updated_at,
        messages=messages,
        versions=versions,
    )


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
    message = Message(pk=data["id"], **fields)
    # The images were deleted with the account; this keeps the partial from querying
    # attachments by an id that may since belong to another message.
    message.mark_without_attachments()
    return message


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
    return Transcript(
        title=str(retained),
        owner_name=retained.owner_name,
        model_label=retained.model_label,
        started_at=retained.conversation_created_at,
        as_of=retained.conversation_updated_at,
        messages=reads.with_model_labels([thawed(data) for data in retained.messages]),
    )


def record_access(
    *,
    via: str,
    viewer,
    ip_address: str | None,
    user_agent: str = "",
    conversation: Conversation | None = None,
    link: ShareLink | None = None,
    retained: RetainedTranscript | None = None,
) -> TranscriptAccess:
    """Write the audit row for one read of a transcript."""
    conversation = conversation or (link.conversation if link else None)
    if conversation is not None:
        reference, title = conversation.pk, conversation.title
        owner = owner_name(conversation.owner)
    else:
        assert retained is not None
        reference, title, owner = retained.conversation_ref, retained.title, retained.owner_name
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
        ip_address=valid_ip(ip_address),
        user_agent=(user_agent or "")[:300],
    )


def valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None
