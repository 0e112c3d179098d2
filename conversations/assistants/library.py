"""Which assistants a person may use or edit, and the version each change makes.

Visibility is `SharedQuerySet.visible_to` (the owner, given groups, the whole team);
using one also needs it enabled. Everything here is read fresh: assistants change
while people use them, and a turn must not use instructions its owner just removed.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q, QuerySet

from conversations.models import Assistant, AssistantVersion

__all__ = [
    "VERSIONED_FIELDS",
    "editable_assistants",
    "record_version",
    "shareable_groups",
    "usable_assistant",
    "usable_assistants",
]

# What changes the answers: a change to any of these makes a new version.
VERSIONED_FIELDS = ("instructions", "model", "reasoning_effort", "web_search", "tools")


def usable_assistants(user, *, search: str = "") -> QuerySet[Assistant]:
    """Return the enabled assistants `user` may use, featured first, then by name."""
    found = Assistant.objects.visible_to(user).filter(enabled=True).select_related("model")
    if search:
        found = found.filter(Q(name__icontains=search) | Q(description__icontains=search))
    return found.order_by("-featured", "name", "pk")


def usable_assistant(user, assistant_id) -> Assistant | None:
    """Return the assistant if `user` may use it now, else None (whatever the reason:
    a stranger learns nothing about it)."""
    try:
        assistant_id = int(assistant_id)
    except (TypeError, ValueError):
        return None
    return usable_assistants(user).filter(pk=assistant_id).first()


def editable_assistants(user) -> QuerySet[Assistant]:
    """Return the assistants `user` may edit: their own, or every one for staff."""
    return Assistant.objects.owned_by(user).select_related("model", "owner")


def shareable_groups(user) -> QuerySet[Group]:
    """Return the groups `user` may share with: their own, or every group for staff."""
    groups = Group.objects.order_by("name")
    return groups if user.is_staff else groups.filter(user=user)


def record_version(assistant: Assistant, changed: set[str] | None = None) -> Assistant:
    """Save `assistant`, as a new version when something that changes answers changed.

    `changed` names the fields the caller changed (None for a new assistant). The
    version's row keeps what that version told the model, so an old answer can be
    reviewed against the instructions it was written with.
    """
    with transaction.atomic():
        new = assistant.pk is None
        bump = not new and bool(set(changed or ()) & set(VERSIONED_FIELDS))
        if bump:
            # Read under a lock: the owner and an admin saving at once would both make
            # the same next version otherwise.
            current = (
                Assistant.objects.select_for_update()
                .filter(pk=assistant.pk)
                .values_list("version", flat=True)
                .first()
            )
            assistant.version = (current or assistant.version) + 1
        assistant.save()
        if new or bump or not assistant.versions.exists():
            AssistantVersion.objects.create(
                assistant=assistant,
                number=assistant.version,
                instructions=assistant.instructions,
                model_name=assistant.model.upstream_id if assistant.model else "",
                reasoning_effort=assistant.reasoning_effort,
                web_search=assistant.web_search,
                tools=list(assistant.tools),
            )
    return assistant
