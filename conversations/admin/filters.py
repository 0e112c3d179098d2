"""The date range filter: local calendar days, typed into two date inputs.

Shared by the usage report, the audit log and (as `ActiveBetweenFilter`) the review.
"""

from __future__ import annotations

import datetime

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.utils.translation import gettext_lazy as _

from conversations.usage.periods import local_midnight, local_today

__all__ = ["LONGEST_CHART_DAYS", "CreatedBetweenFilter"]

# The longest daily chart the usage report draws: a year back from the last day.
LONGEST_CHART_DAYS = 366


class CreatedBetweenFilter(admin.ListFilter):
    """Filter by local calendar days, both ends included, typed into two date inputs."""

    title = _("date")
    template = "admin/conversations/usagerecord/date_range_filter.html"
    parameters = ("created_from", "created_to")

    def __init__(self, request, params, model, model_admin) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.parameters:
            if name in params:
                self.used_parameters[name] = params.pop(name)[-1]

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.parameters)

    def days(self) -> tuple[datetime.date | None, datetime.date | None]:
        try:
            days = tuple(
                datetime.date.fromisoformat(value)
                if (value := self.used_parameters.get(name))
                else None
                for name in self.parameters
            )
        except ValueError as error:
            raise IncorrectLookupParameters(error) from error
        # The report reaches a year back from the last day and a day past it; a date
        # typed near year 1 or 9999 would take that arithmetic out of Python's range.
        earliest = datetime.date.min + datetime.timedelta(days=LONGEST_CHART_DAYS + 1)
        latest = datetime.date.max - datetime.timedelta(days=2)
        if any(day and not earliest <= day <= latest for day in days):
            raise IncorrectLookupParameters("date out of range")
        return days

    def queryset(self, request, queryset):
        first, last = self.days()
        if first:
            queryset = queryset.filter(created_at__gte=local_midnight(first))
        if last:
            queryset = queryset.filter(
                created_at__lt=local_midnight(last + datetime.timedelta(days=1))
            )
        return queryset

    def choices(self, changelist):
        first, last = self.days()
        today = local_today()
        shortcuts = (
            (_("Today"), today, today),
            (_("Last 7 days"), today - datetime.timedelta(days=6), today),
            (_("Last 30 days"), today - datetime.timedelta(days=29), today),
            (_("This month"), today.replace(day=1), today),
        )
        yield {
            "first": first,
            "last": last,
            "hidden": [
                (name, value)
                for name, value in changelist.params.items()
                if name not in self.parameters
            ],
            "shortcuts": [
                (
                    label,
                    changelist.get_query_string(
                        {"created_from": since.isoformat(), "created_to": until.isoformat()}
                    ),
                    (since, until) == (first, last),
                )
                for label, since, until in shortcuts
            ],
            "clear": changelist.get_query_string(remove=self.parameters),
        }
