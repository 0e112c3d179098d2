"""How much each user may spend: their own limits, their groups', the site's default.

Limits resolve field by field (tokens per day, tokens per month): the user's own value,
else the most generous value among their groups, else the site-wide default, else no
limit. An empty value falls back to the next level; 0 blocks. Among several groups the
most generous wins because membership grants access: joining a group should never
lower what someone could already do.

A turn start reads them every time, so each process keeps a user's limits for 30 s
(`conversations.usercache`): a change saved in the process (the admin, a group's
members) clears them at once, other processes within about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import F, Value
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils.translation import gettext as _

from conversations.models import DefaultQuota, GroupQuota, Quota
from conversations.usage.periods import DAY, MONTH
from conversations.usercache import UserCache

__all__ = [
    "LIMIT_FIELDS",
    "Limit",
    "Limits",
    "Policy",
    "effective_limits",
    "policy_for",
    "watch_changes",
]


@dataclass(frozen=True, slots=True)
class Limit:
    """An effective limit and where it came from, for pages that explain it."""

    tokens: int | None
    source: str


@dataclass(frozen=True, slots=True)
class Limits:
    """One level's limits: the user's own, one of their groups', or the site's default.

    `name` is the group's; empty for the other levels.
    """

    name: str
    tokens_per_day: int | None
    tokens_per_month: int | None
    turns_per_minute: int | None


# The columns every level has (`QuotaLimits`), in `Limits` order after the name.
LIMIT_FIELDS = ("tokens_per_day", "tokens_per_month", "turns_per_minute")


@dataclass(frozen=True, slots=True)
class Policy:
    """The limits that apply to one user, read once per turn start (one query)."""

    own: Limits | None
    groups: list[Limits]
    default: Limits | None

    def limits(self) -> dict[str, Limit]:
        return {
            period: resolve_limit(field, self.own, self.groups, self.default)
            for period, field in ((DAY, "tokens_per_day"), (MONTH, "tokens_per_month"))
        }

    @property
    def turns_per_minute(self) -> int:
        """Return the user's turn rate: own, most generous group, default, else the setting."""
        found = resolve_limit("turns_per_minute", self.own, self.groups, self.default)
        return found.tokens if found.tokens is not None else settings.CHAT_TURNS_PER_MINUTE


def policy_for(user) -> Policy:
    """Return the limits of `user` (a user or their id): own, groups', default.

    From the process's cache while fresh, else read (`read_policy`).
    """
    user_id = getattr(user, "pk", user)
    return policies.get(user_id, lambda: read_policy(user_id))


def read_policy(user_id: int) -> Policy:
    """Read the limits of a user: one query for the three levels (UNION ALL of the
    three tables' limit columns)."""
    levels = [
        Quota.objects.filter(user_id=user_id).annotate(level=Value("own"), name=Value("")),
        GroupQuota.objects.filter(group__user=user_id).annotate(
            level=Value("group"), name=F("group__name")
        ),
        DefaultQuota.objects.filter(pk=1).annotate(level=Value("default"), name=Value("")),
    ]
    first, *others = [
        rows.order_by().values_list("level", "name", *LIMIT_FIELDS) for rows in levels
    ]
    found: dict[str, list[Limits]] = {"own": [], "group": [], "default": []}
    for level, name, *limits in first.union(*others, all=True):
        found[level].append(Limits(name, *limits))
    return Policy(
        own=next(iter(found["own"]), None),
        groups=found["group"],
        default=next(iter(found["default"]), None),
    )


# The limits each user's turns started with lately, by user id.
policies: UserCache[Policy] = UserCache("limits", ttl=30.0)


def watch_changes() -> None:
    """Forget the cached limits whenever a limit, a group or a membership changes.

    Called once, from the app's `ready()`. A user created with the id of one that is gone
    (SQLite reuses the ids of rolled-back rows) must not find that one's limits.
    """
    for model in (Quota, GroupQuota, DefaultQuota, Group):
        post_save.connect(policies.clear, sender=model, dispatch_uid=f"limits_saved_{model}")
        post_delete.connect(policies.clear, sender=model, dispatch_uid=f"limits_gone_{model}")
    user_model = get_user_model()
    m2m_changed.connect(
        policies.clear, sender=user_model.groups.through, dispatch_uid="limits_members"
    )
    post_save.connect(forget_on_new_user, sender=user_model, dispatch_uid="limits_new_user")


def forget_on_new_user(sender, instance, created, **kwargs) -> None:
    if created:
        policies.clear()


def effective_limits(user) -> dict[str, Limit]:
    """Return the user's limit per period: own, else most generous group, else default."""
    return policy_for(user).limits()


def resolve_limit(
    field: str, own: Limits | None, groups: list[Limits], default: Limits | None
) -> Limit:
    if own is not None and getattr(own, field) is not None:
        return Limit(getattr(own, field), _("own limit"))
    setting = [group for group in groups if getattr(group, field) is not None]
    if setting:
        best = max(setting, key=lambda group: getattr(group, field))
        return Limit(getattr(best, field), _("group %(name)s") % {"name": best.name})
    if default is not None and getattr(default, field) is not None:
        return Limit(getattr(default, field), _("default policy"))
    return Limit(None, "no limit")
