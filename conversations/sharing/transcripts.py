"""Transcripts: what the read-only transcript page shows, however it was reached.

A share link shows its snapshot, admin review shows every branch of a live
conversation, and a retained transcript shows the frozen copy of a deleted user's
conversation (see `retention`). All three become a `Transcript` through `transcript`,
so the page's heading means the same thing on every route.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from conversations.groups.people import Person, group_people
from conversations.history import reads
from conversations.models import Assistant, Conversation, Message, RetainedTranscript, ShareLink
from conversations.sharing.links import snapshot_messages

__all__ = [
    "Transcript",
    "Version",
    "assistant_name",
    "model_label",
    "owner_name",
    "review_transcript",
    "shared_transcript",
    "transcript",
]


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

    `messages` are read with what their bubbles show (model labels, images); `versions`
    labels the ones that have alternatives, by message id: only admin review shows more
    than one branch. `assistant_name` names the assistant the answers came from, and
    nothing more of it: its instructions are its owner's, whoever reads the transcript.
    """

    title: str
    owner_name: str
    model_label: str
    started_at: datetime.datetime
    as_of: datetime.datetime | None
    messages: list[reads.MessageView]
    versions: dict[int, Version] = field(default_factory=dict)
    assistant_name: str = ""
    # A group conversation's people, owner first: the heading lists them and each
    # question names its writer.
    people: tuple[Person, ...] = ()


def owner_name(user) -> str:
    return user.get_full_name() or user.get_username()


def model_label(conversation: Conversation, messages: list[reads.MessageView]) -> str:
    """Return the conversation's model by name: its catalogue entry, else the last answer's."""
    if conversation.model is not None:
        return conversation.model.label
    answers = [
        shown.model_label
        for shown in messages
        if shown.message.role == Message.Role.ASSISTANT and shown.message.model_name
    ]
    return answers[-1] if answers else ""


def assistant_name(conversation: Conversation, messages: list[Message]) -> str:
    """Return the name of the conversation's assistant, else of the last answer's.

    An answer keeps its assistant when the conversation no longer names one; an
    assistant since deleted leaves no name to show.
    """
    if conversation.assistant_id is not None:
        return conversation.assistant.name
    answered_as = [message.assistant_id for message in messages if message.assistant_id]
    if not answered_as:
        return ""
    found = Assistant.objects.filter(pk=answered_as[-1]).values_list("name", flat=True)
    return found.first() or ""


def transcript(
    messages: list[Message],
    *,
    conversation: Conversation | None = None,
    retained: RetainedTranscript | None = None,
    as_of: datetime.datetime | None,
    versions: dict[int, Version] | None = None,
) -> Transcript:
    """Return the transcript of `messages`: the one place a `Transcript` is made.

    Exactly one of `conversation` (a live one: a share link's or under review) and
    `retained` (a deleted user's frozen copy, which keeps its heading in columns of its
    own) says whose conversation it is. Answers get the catalogue's model labels.
    """
    # A retained copy's images went with the account: only a live one's are shown.
    people = group_people(conversation) if conversation is not None else {}
    shown = reads.message_views(messages, images=retained is None, authors=people)
    if conversation is not None:
        title, owner = str(conversation), owner_name(conversation.owner)
        label, started_at = model_label(conversation, shown), conversation.created_at
        assistant = assistant_name(conversation, messages)
    else:
        assert retained is not None, "a transcript is of a conversation or a retained copy"
        title, owner = str(retained), retained.owner_name
        label, started_at = retained.model_label, retained.conversation_created_at
        assistant = ""
    return Transcript(
        title=title,
        owner_name=owner,
        model_label=label,
        started_at=started_at,
        as_of=as_of,
        messages=shown,
        versions=versions or {},
        assistant_name=assistant,
        people=tuple(people.values()),
    )


def shared_transcript(link: ShareLink) -> Transcript:
    """Return the link's snapshot, as of when it was taken."""
    return transcript(
        snapshot_messages(link), conversation=link.conversation, as_of=link.snapshot_at
    )


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
    return transcript(
        messages, conversation=conversation, as_of=conversation.updated_at, versions=versions
    )
