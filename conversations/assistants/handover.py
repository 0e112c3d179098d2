"""What happens to a deleted user's assistants and saved prompts: nothing is lost silently.

Their assistants and the prompts they shared pass to a staff member, marked with whose
they were (`handed_over_from`), because teammates' conversations and habits rely on
them. With no staff member to take them, the assistants are kept disabled and ownerless
for an admin to find, and the shared prompts ownerless. Prompts the user kept to
themselves go with them.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from conversations.models import Assistant, SavedPrompt, Visibility

__all__ = ["hand_over", "hand_over_deleted_users_things", "successor"]

logger = logging.getLogger(__name__)

COMMAND_CHARS = SavedPrompt._meta.get_field("command").max_length


def hand_over_deleted_users_things(sender, instance, origin=None, **kwargs) -> None:
    """The user model's pre_delete receiver: pass the user's things on before they go.

    It runs inside the deletion's transaction, before the rows pointing at the user
    are set to NULL; the rows moved here no longer point at them.
    """
    hand_over(instance, leaving=leaving_with(instance, origin))


def leaving_with(user, origin) -> QuerySet:
    """Return the users deleted together with `user`, who cannot take anything over."""
    users = get_user_model().objects.all()
    if isinstance(origin, QuerySet) and origin.model is users.model:
        return users.filter(Q(pk=user.pk) | Q(pk__in=origin.values("pk")))
    return users.filter(pk=user.pk)


def successor(leaving: QuerySet):
    """Return who takes a deleted user's things: the first active superuser, else the
    first active staff member, by id; never one of the users being deleted."""
    staff = get_user_model().objects.filter(is_active=True).exclude(pk__in=leaving.values("pk"))
    return (
        staff.filter(is_superuser=True).order_by("pk").first()
        or staff.filter(is_staff=True).order_by("pk").first()
    )


def hand_over(user, *, leaving: QuerySet | None = None) -> None:
    """Pass `user`'s assistants and shared prompts on; delete their private prompts."""
    leaving = leaving if leaving is not None else leaving_with(user, None)
    heir = successor(leaving)
    name = user.get_username()
    now = timezone.now()
    assistants = Assistant.objects.filter(owner=user)
    prompts = SavedPrompt.objects.filter(owner=user)
    deleted, _ = prompts.filter(visibility=Visibility.PRIVATE).delete()
    if heir is None:
        moved = assistants.update(owner=None, enabled=False, handed_over_from=name, updated_at=now)
        shared = prompts.update(owner=None, handed_over_from=name, updated_at=now)
    else:
        moved = assistants.update(owner=heir, handed_over_from=name, updated_at=now)
        shared = pass_prompts(prompts, heir=heir, handed_over_from=name)
    if moved or shared or deleted:
        logger.info(
            "User %s (id %s) deleted: assistants %d, shared prompts %d, %s; "
            "private prompts deleted: %d",
            name,
            user.pk,
            moved,
            shared,
            f"passed to {heir.get_username()} (id {heir.pk})"
            if heir
            else "kept without an owner (assistants disabled)",
            deleted,
        )


def pass_prompts(prompts: QuerySet[SavedPrompt], *, heir, handed_over_from: str) -> int:
    """Give the prompts to `heir`, renaming a command `heir` already has (`/summary-2`)."""
    taken = set(SavedPrompt.objects.filter(owner=heir).values_list("command", flat=True))
    passed = list(prompts)
    for prompt in passed:
        prompt.command = free_command(prompt.command, taken)
        taken.add(prompt.command)
        prompt.owner = heir
        prompt.handed_over_from = handed_over_from
        prompt.save(update_fields=["command", "owner", "handed_over_from", "updated_at"])
    return len(passed)


def free_command(command: str, taken: set[str]) -> str:
    """Return `command`, or the first of `command-2`, `command-3`, ... not in `taken`."""
    found, number = command, 1
    while found in taken:
        number += 1
        suffix = f"-{number}"
        found = command[: COMMAND_CHARS - len(suffix)] + suffix
    return found
