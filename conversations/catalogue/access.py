"""Which catalogue entries a user may use, kept per user for a turn start.

An entry limited to groups is open to their members only; an entry a group has as its
default comes first for its members (`models.catalogue.open_to`, `preferred`). A turn
start needs this for its model every time, and it changes only when an admin edits the
catalogue's groups or someone's memberships, so each process keeps it per user for
30 s (`conversations.usercache`): a change saved in the process clears it at once,
other processes within about a second. The entries' own columns (enabled, what the
gateway was found to accept) are not kept here: the turn reads its model's row fresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Value
from django.db.models.signals import m2m_changed, post_delete, post_save

from conversations.models import ModelChoice
from conversations.usercache import UserCache

__all__ = ["ModelAccess", "access_for", "mark", "watch_changes"]


@dataclass(frozen=True, slots=True)
class ModelAccess:
    """The entries limited to groups, those of them open to the user, and the user's
    groups' defaults (ids)."""

    limited: frozenset[int]
    open: frozenset[int]
    defaults: frozenset[int]

    def usable(self, model_id: int) -> bool:
        """Return whether the user may use the entry: open to everyone or to a group of theirs."""
        return model_id not in self.limited or model_id in self.open


def access_for(user) -> ModelAccess:
    """Return what `user` (a user or their id) may use, from the cache while fresh."""
    user_id = getattr(user, "pk", user)
    return accesses.get(user_id, lambda: read_access(user_id))


def mark(model: ModelChoice, access: ModelAccess) -> ModelChoice:
    """Set `usable` and `group_default` on `model`, as `with_access` annotates them."""
    model.usable = access.usable(model.pk)
    model.group_default = model.pk in access.defaults
    return model


def read_access(user_id: int) -> ModelAccess:
    """Read the catalogue's group limits and the user's groups' entries: one query."""
    limits = ModelChoice.groups.through.objects
    defaults = ModelChoice.default_for_groups.through.objects
    first, *others = [
        rows.order_by().annotate(kind=Value(kind)).values_list("kind", "modelchoice_id")
        for kind, rows in (
            ("limited", limits.all()),
            ("open", limits.filter(group__user=user_id)),
            ("default", defaults.filter(group__user=user_id)),
        )
    ]
    found: dict[str, set[int]] = {"limited": set(), "open": set(), "default": set()}
    for kind, model_id in first.union(*others, all=True):
        found[kind].add(model_id)
    return ModelAccess(
        limited=frozenset(found["limited"]),
        open=frozenset(found["open"]),
        defaults=frozenset(found["default"]),
    )


# What each user's turns found they may use lately, by user id.
accesses: UserCache[ModelAccess] = UserCache("model-access", ttl=30.0)


def watch_changes() -> None:
    """Forget the cached access whenever entries, their groups or memberships change.

    Called once, from the app's `ready()`. Entries are cleared too: a deleted entry's
    id may come back on SQLite, and a new user may take a gone one's id.
    """
    user_model = get_user_model()
    for through in (
        ModelChoice.groups.through,
        ModelChoice.default_for_groups.through,
        user_model.groups.through,
    ):
        m2m_changed.connect(accesses.clear, sender=through, dispatch_uid=f"access_m2m_{through}")
    for model in (ModelChoice, Group):
        post_save.connect(accesses.clear, sender=model, dispatch_uid=f"access_saved_{model}")
        post_delete.connect(accesses.clear, sender=model, dispatch_uid=f"access_gone_{model}")
    post_save.connect(forget_on_new_user, sender=user_model, dispatch_uid="access_new_user")


def forget_on_new_user(sender, instance, created, **kwargs) -> None:
    if created:
        accesses.clear()
