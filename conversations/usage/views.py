"""The signed-in user's own usage page: what they spent and what their quota leaves."""

from __future__ import annotations

import datetime

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from conversations.models import UsageRecord
from conversations.usage import quotas
from conversations.usage.charts import bar_chart
from conversations.usage.ledger import daily_totals, totals, totals_by, with_model_labels
from conversations.usage.periods import current_windows

CHART_DAYS = 30


@require_GET
def usage(request):
    return render(request, "conversations/usage.html", usage_context(request.user))


def usage_context(user, now: datetime.datetime | None = None) -> dict:
    """Return today's and this month's totals, quota standing and the daily chart."""
    now = now or timezone.now()
    day, month = current_windows(now)
    # Titles are written for the user, not asked for, and never count against their
    # quota: leaving them out keeps this page's totals in step with the quota beside them.
    records = UsageRecord.objects.filter(user=user).exclude(purpose=UsageRecord.Purpose.TITLE)
    this_month = month.records(records)
    return {
        "today": totals(day.records(records)),
        "this_month": totals(this_month),
        "by_model": with_model_labels(totals_by(this_month, "model_name")),
        "quota": quotas.status(user, now=now),
        "chart": bar_chart(
            daily_totals(
                records,
                first=day.starts_on - datetime.timedelta(days=CHART_DAYS - 1),
                last=day.starts_on,
            )
        ),
        "chart_days": CHART_DAYS,
        "time_zone": timezone.get_default_timezone_name(),
    }
