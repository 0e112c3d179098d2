"""Who is in a group conversation: invitations, leaving, removal, the group's end.

Plain functions, each one transaction, called by the members dialog (`groups/views.py`)
and the admin. The caller authorises: only the owner invites, removes and ends
(`Conversation.objects.for_user`); any member may leave. Every change writes a line of
the audit log (`MembershipEvent`), and `Conversation.is_group` follows whether members
remain, so a turn knows it is in a group without another query.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.groups.people import display_name
from conversations.models import Conversation, ConversationMember, MembershipEvent, heir_of

__all__ = [
    "MembershipError",
    "candidates",
    "end_group",
    "invite",
    "invite_group",
    "leave",
    "member_ids",
    "note_joined",
    "record_departures",
    "remove",
]

Kind = MembershipEvent.Kind
CANDIDATES_SHOWN = 8


class MembershipError(Exception):
    """A change to the members that cannot be made, in words for the owner."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


def member_ids(conversation_id: int) -> list[int]:
    """Return the user ids of a conversation's members (not its owner)."""
    return list(
        ConversationMember.objects.filter(conversation_id=conversation_id).values_list(
            "user_id", flat=True
        )
    )


def candidates(conversation: Conversation, query: str) -> list:
    """Return active users whose name or username contains `query`, who are not in the
    conversation yet: what the invite box offers."""
    query = query.strip()
    if not query:
        return []
    users = get_user_model().objects.filter(is_active=True).exclude(pk=conversation.owner_id)
    users = users.exclude(
        pk__in=ConversationMember.objects.filter(conversation=conversation).values("user")
    )
    words = Q(username__icontains=query) | Q(first_name__icontains=query)
    words |= Q(last_name__icontains=query)
    return list(users.filter(words).order_by("username")[:CANDIDATES_SHOWN])


def invite(conversation: Conversation, actor, users: Iterable) -> list[ConversationMember]:
    """Make `users` members of the conversation; return the new memberships.

    Refuses, naming them, inactive accounts and more members than the limit; the owner
    and existing members are skipped. All or nothing.
    """
    users = [user for user in users if user.pk != conversation.owner_id]
    inactive = [display_name(user) for user in users if not user.is_active]
    if inactive:
        raise MembershipError(
            _("%(names)s cannot join: the account is deactivated.") % {"names": ", ".join(inactive)}
        )
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        present = set(member_ids(locked.pk))
        joining = [user for user in users if user.pk not in present]
        limit = settings.CHAT_MAX_GROUP_MEMBERS
        if len(present) + len(joining) > limit:
            raise MembershipError(
                _("A conversation can have at most %(limit)d members.") % {"limit": limit}
            )
        now = timezone.now()
        added = ConversationMember.objects.bulk_create(
            ConversationMember(conversation=locked, user=user, invited_by=actor, invited_at=now)
            for user in joining
        )
        for user in joining:
            record(locked, Kind.INVITED, actor=actor, member=user)
        if added and not locked.is_group:
            Conversation.objects.filter(pk=locked.pk).update(is_group=True)
        conversation.is_group = conversation.is_group or bool(added)
    return added


def invite_group(conversation: Conversation, actor, group: Group) -> list[ConversationMember]:
    """Invite the active users of a Django group (its inactive ones are left out)."""
    return invite(conversation, actor, group.user_set.filter(is_active=True).order_by("pk"))


def remove(conversation: Conversation, actor, member_id: int) -> bool:
    """Remove a member (the owner's act); return whether they were one."""
    return _drop(conversation, member_id, Kind.REMOVED, actor=actor)


def leave(conversation: Conversation, user) -> bool:
    """A member leaves the group; return whether they were in it."""
    return _drop(conversation, user.pk, Kind.LEFT, actor=user)


def end_group(conversation: Conversation, actor) -> list[int]:
    """Remove every member: the conversation is the owner's alone again. Return who left."""
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        gone = list(ConversationMember.objects.filter(conversation=locked).select_related("user"))
        ConversationMember.objects.filter(conversation=locked).delete()
        Conversation.objects.filter(pk=locked.pk).update(is_group=False)
        record(locked, Kind.ENDED, actor=actor, member=None)
    conversation.is_group = False
    return [member.user_id for member in gone]


def _drop(conversation: Conversation, user_id: int, kind: str, *, actor) -> bool:
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        member = (
            ConversationMember.objects.filter(conversation=locked, user_id=user_id)
            .select_related("user")
            .first()
        )
        if member is None:
            return False
        member.delete()
        record(locked, kind, actor=actor, member=member.user)
        if not ConversationMember.objects.filter(conversation=locked).exists():
            Conversation.objects.filter(pk=locked.pk).update(is_group=False)
            conversation.is_group = False
    return True


def note_joined(conversation: Conversation, user) -> None:
    """Record a member's first visit (once: the row's `joined_at` says it happened)."""
    if conversation.owner_id == user.pk:
        return
    with transaction.atomic():
        marked = ConversationMember.objects.filter(
            conversation=conversation, user=user, joined_at__isnull=True
        ).update(joined_at=timezone.now())
        if marked:
            record(conversation, Kind.JOINED, actor=user, member=user)


def record_departures(sender, instance, origin=None, **kwargs) -> None:
    """The user model's pre_delete receiver: note in each group a deleted owner leaves
    who takes it over (`chats.keep_groups` moves it), and a deleted member's departure."""
    leaving = _leaving(instance, origin)
    for conversation in Conversation.objects.filter(owner=instance, is_group=True):
        heir = heir_of(conversation, leaving)
        record(conversation, Kind.DEPARTED, actor=heir.user if heir else None, member=instance)
    for membership in ConversationMember.objects.filter(user=instance).select_related(
        "conversation"
    ):
        record(membership.conversation, Kind.DEPARTED, actor=None, member=instance)


def _leaving(user, origin) -> set[int]:
    ids = {user.pk}
    if isinstance(origin, QuerySet) and origin.model is type(user):
        ids.update(origin.values_list("pk", flat=True))
    return ids


def record(conversation: Conversation, kind: str, *, actor, member) -> MembershipEvent:
    return MembershipEvent.objects.create(
        kind=kind,
        conversation=conversation,
        conversation_ref=conversation.pk,
        conversation_title=conversation.title,
        actor=actor,
        actor_name=actor.get_username() if actor else "",
        member=member,
        member_name=member.get_username() if member else "",
    )
