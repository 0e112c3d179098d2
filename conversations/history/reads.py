"""Read-side queries for pages and sockets, each authorised through `for_member` (the
conversations a user owns or was invited into) or, for the sidebar's own list and
archive, `for_user`.

Synchronous, for views and for `in_database_thread`. Reads write nothing: answers
whose process died mid-stream are settled by every serving process in the background
(`pipeline.startup`), not by the page that shows them.

Messages come back as `MessageView`s: the row with what its bubble shows beside it,
read in the same few queries, so rendering a bubble reads nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from conversations.groups.people import (
    Person,
    former_member,
    group_people,
    people_of_groups,
    with_writers,
)
from conversations.models import (
    Assistant,
    Attachment,
    Conversation,
    Message,
    ModelChoice,
)
from conversations.rendering import stored

__all__ = [
    "MessageView",
    "SidebarPage",
    "TranscriptView",
    "alternatives_of",
    "archived",
    "conversation",
    "message",
    "message_views",
    "messages",
    "model_labels",
    "owned_conversation",
    "sidebar",
    "sidebar_entry",
    "transcript",
]

SIDEBAR_PAGE_SIZE = 50


@dataclass(frozen=True)
class MessageView:
    """One message as the chat shows it: its row and what its bubble shows beside it.

    `html` is a finished message's stored HTML (empty while an answer streams: the live
    renderer draws it). `alternatives` are the ids of the messages at its place in the
    tree (edits and regenerations), itself included, oldest first: the branch
    switcher's "2 / 3"; empty where no switcher is shown. `model_label` is the
    catalogue's name for the model an answer came from; `images` are a question's
    attached images.
    """

    message: Message
    html: str
    alternatives: tuple[int, ...] = ()
    model_label: str = ""
    images: tuple[Attachment, ...] = ()
    # The assistant an answer spoke as (name, emoji, icon), while it exists.
    assistant: Assistant | None = None
    # Who wrote a question, in a group conversation (None elsewhere: it is the reader's).
    author: Person | None = None


def message_views(
    messages: Iterable[Message],
    *,
    alternatives: Mapping[int, Sequence[int]] | None = None,
    labels: Mapping[str, str] | None = None,
    images: bool = True,
    authors: Mapping[int, Person] | None = None,
) -> list[MessageView]:
    """Return a view of each message, in order.

    The finished ones' HTML is what was stored with them, rendered again and stored
    here where an older renderer made it (`rendering.stored`): here, in the database
    thread, not where the bubbles are drawn. `alternatives` (by message id) are left
    out when not given: no switcher. `labels` (upstream id -> label), when the caller
    has the catalogue entries at hand, saves looking them up (one query otherwise). A
    question's images are its prefetched `attachments`: callers prefetch them in one
    query for all. `images=False` is for messages whose images are gone (a retained
    transcript's). `authors` (by user id) names each question's writer in a group
    conversation.
    """
    messages = list(messages)
    if authors:
        authors = with_writers(
            dict(authors), (m.author_id for m in messages if m.role == Message.Role.USER)
        )
    labels = model_labels(messages, known=labels)
    assistants = assistants_of(messages)
    alternatives = alternatives or {}
    finished = [m for m in messages if not m.is_streaming]
    html = dict(zip([m.pk for m in finished], stored.html_of(finished), strict=True))
    return [
        MessageView(
            message,
            html=html.get(message.pk, ""),
            alternatives=tuple(alternatives.get(message.pk, ())),
            model_label=labels.get(message.model_name, message.model_name),
            assistant=assistants.get(message.assistant_id),
            author=author_of(message, authors),
            images=(
                tuple(message.attachments.all())
                if images and message.role == Message.Role.USER
                else ()
            ),
        )
        for message in messages
    ]


def author_of(message: Message, authors: Mapping[int, Person] | None) -> Person | None:
    """Return who wrote a question in a group; a deleted account is a former member."""
    if not authors or message.role != Message.Role.USER:
        return None
    return authors.get(message.author_id) or former_member()


def assistants_of(messages: Sequence[Message]) -> dict[int, Assistant]:
    """Return the assistants the answers among `messages` spoke as, by id: what their
    bubbles show (one query, none when no answer had one). Messages loaded without the
    column (planning reads only what it needs) are skipped rather than read one by one."""
    ids = {m.__dict__.get("assistant_id") for m in messages} - {None}
    if not ids:
        return {}
    return Assistant.objects.only("name", "emoji", "icon").in_bulk(ids)


def model_labels(
    messages: Iterable[Message], *, known: Mapping[str, str] | None = None
) -> Mapping[str, str]:
    """Return the catalogue's label for each model the answers among `messages` came from.

    Answers keep the upstream id they were sent with; people know models by label. An
    id no longer in the catalogue has none (it shows as it is). `known` may already
    hold them all; otherwise one query.
    """
    ids = {m.model_name for m in messages if m.model_name}
    if known is not None and ids <= known.keys():
        return known
    if not ids:
        return {}
    return dict(ModelChoice.objects.filter(upstream_id__in=ids).values_list("upstream_id", "label"))


def alternatives_of(messages: Iterable[Message]) -> dict[int, list[int]]:
    """Return the ids of the messages at each message's place in the tree, by its id.

    One query over the messages' conversations, for the branch switcher.
    """
    messages = list(messages)
    if not messages:
        return {}
    by_parent: dict[tuple[int, int | None], list[int]] = {}
    parents = {m.parent_id for m in messages}
    conversation_ids = {m.conversation_id for m in messages}
    rows = (
        Message.objects.filter(conversation_id__in=conversation_ids)
        .filter(Q(parent_id__in=[p for p in parents if p]) | Q(parent__isnull=True))
        .order_by("created_at", "pk")
        .values_list("conversation_id", "parent_id", "pk")
    )
    for conversation_id, parent_id, pk in rows:
        by_parent.setdefault((conversation_id, parent_id), []).append(pk)
    return {m.pk: by_parent.get((m.conversation_id, m.parent_id), [m.pk]) for m in messages}


@dataclass(frozen=True)
class TranscriptView:
    """The part of a conversation's branch a page shows, newest last.

    Long conversations open on their latest messages; `earlier_than` names the first
    one shown when older ones exist, for the "load earlier messages" button.
    """

    conversation: Conversation
    shown: list[MessageView]
    earlier_than: int | None = None
    # A group conversation's people by user id (`people.group_people`); empty otherwise.
    people: Mapping[int, Person] = field(default_factory=dict)

    @property
    def members(self) -> list[Person]:
        """The group's people, owner first."""
        return list(self.people.values())

    @property
    def messages(self) -> list[Message]:
        return [view.message for view in self.shown]

    @property
    def streaming(self) -> list[Message]:
        return [m for m in self.messages if m.is_streaming]


TRANSCRIPT_PAGE_SIZE = 100


def conversation(user, conversation_id: int) -> Conversation | None:
    """Return a conversation the user owns or is a member of, with its owner."""
    return (
        Conversation.objects.for_member(user)
        .select_related("model", "assistant", "owner")
        .filter(pk=conversation_id)
    ).first()


def owned_conversation(user, conversation_id: int) -> Conversation | None:
    """Return a conversation the user owns: what only its owner may manage."""
    return Conversation.objects.for_user(user).filter(pk=conversation_id).first()


def transcript(
    user, conversation_id: int, *, around: int | None = None, before: int | None = None
) -> TranscriptView | None:
    """Return the latest page of the branch on show, or the page ending before `before`.

    With `around` (a message a search result links to) the page starts a little above
    that message and runs to the end, so the link lands on it.
    """
    found = conversation(user, conversation_id)
    if found is None:
        return None
    branch = found.branch_on_show()
    ids = [m.pk for m in branch.messages]
    end = ids.index(before) if before in ids else len(ids)
    start = max(0, end - TRANSCRIPT_PAGE_SIZE)
    if around in ids and before is None:
        start = min(start, max(0, ids.index(around) - 5))
    people = group_people(found)
    shown = message_views(
        branch.messages[start:end], alternatives=branch.alternatives, authors=people
    )
    earlier_than = shown[0].message.pk if start > 0 and shown else None
    return TranscriptView(found, shown, earlier_than=earlier_than, people=people)


def message(user, message_id: int) -> MessageView | None:
    found = (
        Message.objects.filter(
            conversation__in=Conversation.objects.for_member(user), pk=message_id
        )
        .select_related("conversation__owner")
        .prefetch_related("attachments")
        .first()
    )
    if found is None:
        return None
    people = group_people(found.conversation)
    return message_views([found], alternatives=alternatives_of([found]), authors=people)[0]


def messages(user, message_ids: list[int | None]) -> list[MessageView]:
    """Return the user's messages among `message_ids`, oldest first."""
    wanted = [pk for pk in message_ids if pk is not None]
    found = list(
        Message.objects.filter(
            conversation__in=Conversation.objects.for_member(user), pk__in=wanted
        )
        .select_related("conversation__owner")
        .order_by("created_at", "pk")
        .prefetch_related("attachments")
    )
    people = group_people(found[0].conversation) if found else {}
    return message_views(found, alternatives=alternatives_of(found), authors=people)


@dataclass(frozen=True)
class SidebarPage:
    """One page of the sidebar: pinned chats (first page only), then groups by age."""

    pinned: list[Conversation]
    groups: list[tuple[str, list[Conversation]]]
    next_cursor: str
    continues_group: str
    # Group conversations others own that the user is a member of, with their people
    # (first page only).
    shared: list[tuple[Conversation, list[Person]]] = field(default_factory=list)

    @property
    def last_group(self) -> str:
        return self.groups[-1][0] if self.groups else self.continues_group

    @property
    def is_empty(self) -> bool:
        return not self.pinned and not self.groups and not self.continues_group and not self.shared


def sidebar(user, *, cursor: str = "", continues_group: str = "") -> SidebarPage:
    """Return a page of the user's conversations, most recent activity first.

    Keyset pagination on (updated_at, pk), served by the sidebar index: every page costs
    the same however many conversations the user has.
    """
    conversations = (
        Conversation.objects.for_user(user)
        .filter(archived=False)
        .only("pk", "title", "updated_at", "pinned", "archived", "is_group", "owner_id")
        .order_by("-updated_at", "-pk")
    )
    pinned = [] if cursor else list(conversations.filter(pinned=True)[:SIDEBAR_PAGE_SIZE])
    rest = conversations.filter(pinned=False)
    if cursor:
        rest = after_cursor(rest, cursor)
    rows = list(rest[: SIDEBAR_PAGE_SIZE + 1])
    next_cursor = ""
    if len(rows) > SIDEBAR_PAGE_SIZE:
        rows = rows[:SIDEBAR_PAGE_SIZE]
        last = rows[-1]
        next_cursor = f"{last.updated_at.isoformat()}|{last.pk}"
    groups: list[tuple[str, list[Conversation]]] = []
    today = timezone.localdate()
    for conversation in rows:
        label = age_group(timezone.localdate(conversation.updated_at), today)
        if groups and groups[-1][0] == label:
            groups[-1][1].append(conversation)
        else:
            groups.append((label, [conversation]))
    shared = [] if cursor else shared_with(user)
    return SidebarPage(pinned, groups, next_cursor, continues_group, shared)


def shared_with(user) -> list[tuple[Conversation, list[Person]]]:
    """Return the group conversations the user was invited into, latest activity first,
    each with its people (two queries)."""
    found = list(
        Conversation.objects.filter(members__user=user, archived=False)
        .select_related("owner")
        .order_by("-updated_at", "-pk")[:SIDEBAR_PAGE_SIZE]
    )
    people = people_of_groups(found)
    return [(conversation, people.get(conversation.pk, [])) for conversation in found]


def sidebar_entry(user, conversation_id: int) -> tuple[Conversation | None, list[Person]]:
    """Return a conversation as `user` may see it now, with its people if it is a group
    (for the sidebar's marks and the header's group bar); (None, []) when the user may no
    longer see it."""
    found = conversation(user, conversation_id)
    if found is None or not found.is_group:
        return found, []
    return found, people_of_groups([found]).get(found.pk, [])


def after_cursor(conversations, cursor: str):
    """Return the conversations older than the cursor `<updated_at iso>|<pk>`."""
    try:
        stamp, pk = cursor.rsplit("|", 1)
        moment = datetime.fromisoformat(stamp)
        pk = int(pk)
    except ValueError:
        return conversations.none()
    if timezone.is_naive(moment):
        # The page sends back the aware stamp it was given; a hand-made one is read as UTC.
        moment = timezone.make_aware(moment, UTC)
    return conversations.filter(Q(updated_at__lt=moment) | Q(updated_at=moment, pk__lt=pk))


def age_group(day: date, today: date) -> str:
    if day >= today:
        return gettext_noop("Today")
    if day == today - timedelta(days=1):
        return gettext_noop("Yesterday")
    if day >= today - timedelta(days=7):
        return gettext_noop("Previous 7 days")
    if day >= today - timedelta(days=30):
        return gettext_noop("Previous 30 days")
    return gettext_noop("Older")


def archived(user) -> list[Conversation]:
    return list(
        Conversation.objects.for_user(user)
        .filter(archived=True)
        .only("pk", "title", "updated_at")
        .order_by("-updated_at", "-pk")[:500]
    )


def model_choices(user) -> list[ModelChoice]:
    """Return the models `user` may pick, ready for `preferred` to find their default."""
    return list(ModelChoice.objects.usable_by(user))
