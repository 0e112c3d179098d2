"""Which saved prompts a person may use or edit, and what a new command must not clash with.

Visibility is `SharedQuerySet.visible_to` (the owner, given groups, the whole team), as
for assistants. A person's own prompts come first everywhere: they are the ones they
reach for, and the ones a shared prompt of the same command should not push down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Case, Q, QuerySet, Value, When

from conversations.models import SavedPrompt

__all__ = [
    "COMMAND",
    "MENU_LIMIT",
    "MenuEntry",
    "clashing_prompt",
    "command_from_input",
    "editable_prompts",
    "menu_entries",
    "owner_name",
    "usable_prompts",
]

# Letters of any script, digits, _ and -: so 翻译 is a command as well as fix-grammar.
COMMAND = re.compile(r"[\w-]+")
# The menu sends every text whole (inserting must not wait for the network); a person
# with more prompts than this finds the rest on the Prompts page, own ones kept first.
MENU_LIMIT = 300


@dataclass(frozen=True)
class MenuEntry:
    """One line of the composer's `/` menu, as the page's script reads it."""

    id: int
    command: str
    title: str
    text: str
    # Empty unless another visible prompt has the same command: then whose each one is.
    owner: str
    own: bool


def usable_prompts(user, *, search: str = "") -> QuerySet[SavedPrompt]:
    """Return the prompts `user` may use, their own first, then by command."""
    found = SavedPrompt.objects.visible_to(user).select_related("owner")
    if search:
        found = found.filter(
            Q(command__icontains=search) | Q(title__icontains=search) | Q(text__icontains=search)
        )
    mine_first = Case(When(owner=user, then=Value(0)), default=Value(1))
    return found.annotate(mine_first=mine_first).order_by("mine_first", "command", "pk")


def editable_prompts(user) -> QuerySet[SavedPrompt]:
    """Return the prompts `user` may change or delete: their own, or every one for staff."""
    return SavedPrompt.objects.owned_by(user).select_related("owner")


def owner_name(prompt: SavedPrompt) -> str:
    """Return the name people know the prompt's owner by (or who owned it before)."""
    if prompt.owner is None:
        return prompt.handed_over_from
    return prompt.owner.get_full_name() or prompt.owner.get_username()


def menu_entries(user) -> list[MenuEntry]:
    """Return the composer menu's prompts, naming owners where two share a command."""
    prompts = list(usable_prompts(user)[:MENU_LIMIT])
    seen: dict[str, int] = {}
    for prompt in prompts:
        key = prompt.command.casefold()
        seen[key] = seen.get(key, 0) + 1
    return [
        MenuEntry(
            id=prompt.pk,
            command=prompt.command,
            title=prompt.title,
            text=prompt.text,
            owner=owner_name(prompt) if seen[prompt.command.casefold()] > 1 else "",
            own=prompt.owner_id == user.pk,
        )
        for prompt in prompts
    ]


def command_from_input(value: str) -> str:
    """Return the command as typed without spaces and one leading slash (/fix is fix).

    The full-width slash counts too: a Chinese input method in full-width mode types it.
    """
    value = value.strip()
    if value[:1] in ("/", "／"):  # noqa: RUF001 (the full-width slash is meant)
        value = value[1:].lstrip()
    return value


def clashing_prompt(owner, command: str, *, exclude_id: int | None = None) -> SavedPrompt | None:
    """Return a prompt `owner` can already use under `command` (any case), if there is one.

    Two prompts of one command in the owner's own menu would leave them guessing which
    `/command` inserts. Prompts shared later by others cannot be foreseen; the menu names
    the owners of those.
    """
    if owner is None:
        return None
    found = usable_prompts(owner).filter(command__iexact=command)
    if exclude_id is not None:
        found = found.exclude(pk=exclude_id)
    return found.first()
