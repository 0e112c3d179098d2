"""How a person is named in a group conversation: a display name and avatar initials.

One place for both, so message bubbles, the presence bar, the typing line and the model's
input all name a member the same way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils.translation import gettext

from conversations.models import Conversation, ConversationMember

__all__ = [
    "Person",
    "display_name",
    "former_member",
    "group_people",
    "initials",
    "people_of_groups",
    "person",
    "with_writers",
]


@dataclass(frozen=True, slots=True)
class Person:
    """A member as the page shows them."""

    user_id: int
    name: str
    initials: str


def display_name(user) -> str:
    """Return the user's full name, or their username when they gave none."""
    full = (user.get_full_name() or "").strip()
    if full and _is_cjk(full[0]):
        # Django joins first and last name with a space; Chinese names have none.
        full = "".join(full.split())
    return full or user.get_username()


def initials(name: str) -> str:
    """Return up to two letters for an avatar.

    "Mei Lin" → "ML", "mei" → "M"; a name written in CJK characters, which has no spaces
    and whose given name comes last, shows its last two characters ("王小明" → "小明"),
    as Chinese chat apps do.
    """
    name = name.strip()
    if not name:
        return "?"
    if _is_cjk(name[0]):
        joined = "".join(name.split())
        return joined[-2:] if len(joined) > 2 else joined
    words = [w for w in name.replace(".", " ").replace("_", " ").split() if w]
    return "".join(word[0] for word in words[:2]).upper() or name[0].upper()


def person(user) -> Person:
    name = display_name(user)
    return Person(user.pk, name, initials(name))


def group_people(conversation: Conversation) -> dict[int, Person]:
    """Return the people of a group conversation by user id, owner first. One query;
    nothing for a conversation without members."""
    if not conversation.is_group:
        return {}
    owner = person(conversation.owner)
    people = {owner.user_id: owner}
    members = ConversationMember.objects.filter(conversation=conversation).select_related("user")
    for member in members:
        people[member.user_id] = person(member.user)
    return people


def people_of_groups(conversations: Iterable[Conversation]) -> dict[int, list[Person]]:
    """Return each group conversation's people, owner first, by conversation id: what the
    sidebar marks shared conversations with. One query for all (owners come loaded)."""
    groups = {c.pk: c for c in conversations if c.is_group}
    people = {pk: [person(c.owner)] for pk, c in groups.items()}
    members = ConversationMember.objects.filter(conversation__in=list(groups)).select_related(
        "user"
    )
    for member in members:
        people[member.conversation_id].append(person(member.user))
    return people


def with_writers(people: dict[int, Person], author_ids: Iterable[int | None]) -> dict[int, Person]:
    """Return `people` with the writers among `author_ids` who are no longer in the group
    (they left, or were removed) added: their words keep their names. One query, none
    when every writer is in the group; a deleted account stays a former member."""
    missing = {pk for pk in author_ids if pk is not None} - people.keys()
    if not people or not missing:
        return people
    writers = get_user_model().objects.filter(pk__in=missing)
    return {**people, **{user.pk: person(user) for user in writers}}


def former_member() -> Person:
    """Who wrote a question whose author's account was deleted."""
    return Person(0, gettext("Former member"), "?")


def _is_cjk(character: str) -> bool:
    return unicodedata.name(character, "").startswith(("CJK", "HANGUL", "HIRAGANA", "KATAKANA"))
