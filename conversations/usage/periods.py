"""Local calendar periods: the day and month a moment falls in, in settings.TIME_ZONE.

Quotas reset and usage pages group by these, so "today" means the team's today and
not UTC's, whatever the database's own time zone.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils import timezone

__all__ = ["DAY", "MONTH", "Window", "current_windows", "local_midnight", "local_today"]

DAY = "day"
MONTH = "month"


@dataclass(frozen=True, slots=True)
class Window:
    """One period containing a moment: its kind, first local day and reset time."""

    period: str
    starts_on: datetime.date
    resets_at: datetime.datetime

    @property
    def starts_at(self) -> datetime.datetime:
        return local_midnight(self.starts_on)

    def records(self, queryset):
        """Return the rows of `queryset` created within this period."""
        return queryset.filter(created_at__gte=self.starts_at, created_at__lt=self.resets_at)


def local_today(now: datetime.datetime | None = None) -> datetime.date:
    return timezone.localtime(now or timezone.now(), timezone.get_default_timezone()).date()


def local_midnight(day: datetime.date) -> datetime.datetime:
    """Return the first moment of `day` in settings.TIME_ZONE, as an aware datetime."""
    return timezone.make_aware(
        datetime.datetime.combine(day, datetime.time()), timezone.get_default_timezone()
    )


def current_windows(now: datetime.datetime | None = None) -> tuple[Window, Window]:
    """Return the day and the month containing `now`."""
    today = local_today(now)
    first = today.replace(day=1)
    next_month = (first + datetime.timedelta(days=32)).replace(day=1)
    return (
        Window(DAY, today, local_midnight(today + datetime.timedelta(days=1))),
        Window(MONTH, first, local_midnight(next_month)),
    )
