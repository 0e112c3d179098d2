"""The usage report: every recorded response, totals per user, model and assistant, a
daily chart.

The list is Django's changelist of `UsageRecord`; the report above it sums whatever
the filters select, and Export CSV writes the same rows. Assistants are told apart by
the name each record kept, as models are by theirs: the report still names an
assistant after it is renamed away or deleted.
"""

from __future__ import annotations

import datetime

from django.contrib import admin
from django.contrib.auth.models import Group
from django.http import HttpResponse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conversations.admin.exports import (
    ReadOnlyExportAdmin,
    csv_download,
    local_time,
    spreadsheet_safe,
)
from conversations.admin.filters import LONGEST_CHART_DAYS, CreatedBetweenFilter
from conversations.models import UsageRecord
from conversations.usage.charts import bar_chart
from conversations.usage.ledger import daily_totals, totals, totals_by, with_model_labels
from conversations.usage.periods import local_today

__all__ = ["UsageRecordAdmin"]

# How the per-user and per-model totals are ranked; not a filter, so it is taken out
# of the query before the changelist sees it.
TOTALS_ORDER = "totals"
CHART_DAYS = 30


class AssistantFilter(admin.SimpleListFilter):
    """The assistants named in the records, and "No assistant" (the empty name)."""

    title = _("assistant")
    parameter_name = "assistant"

    def lookups(self, request, model_admin):
        named = (
            UsageRecord.objects.exclude(assistant_name="")
            .order_by("assistant_name")
            .values_list("assistant_name", flat=True)
            .distinct()
        )
        return [("", _("No assistant")), *((name, name) for name in named)]

    def queryset(self, request, queryset):
        # "" is a choice of its own (no assistant); only a missing parameter means all.
        name = self.value()
        return queryset if name is None else queryset.filter(assistant_name=name)


class GroupFilter(admin.SimpleListFilter):
    title = _("group")
    parameter_name = "group"

    def lookups(self, request, model_admin):
        return Group.objects.order_by("name").values_list("pk", "name")

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(user__groups=self.value())
        return queryset


CSV_HEADER = (
    "time",
    "user",
    "model",
    "assistant",
    "purpose",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "estimated",
    "conversation_id",
    "message_id",
)


def csv_row(record: UsageRecord) -> tuple:
    return (
        local_time(record.created_at),
        spreadsheet_safe(record.user.get_username()),
        spreadsheet_safe(record.model_name),
        spreadsheet_safe(record.assistant_name),
        record.purpose,
        record.input_tokens,
        record.cached_tokens,
        record.output_tokens,
        record.reasoning_tokens,
        record.total_tokens,
        record.cost,
        int(record.estimated),
        record.conversation_id or "",
        record.message_id or "",
    )


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyExportAdmin):
    """The usage report: records, totals per user, model and assistant, a daily chart, CSV."""

    # Cached and reasoning tokens and the assistant are in the detail view and the CSV;
    # the token counts share one column so the list fits beside the filters at 1280 px.
    list_display = (
        "created_at",
        "user",
        "model_label",
        "purpose",
        "tokens",
        "cost",
        "estimated",
    )
    list_filter = (
        CreatedBetweenFilter,
        ("user", admin.RelatedOnlyFieldListFilter),
        GroupFilter,
        ("model", admin.RelatedOnlyFieldListFilter),
        AssistantFilter,
        "purpose",
        "estimated",
    )
    list_select_related = ("user", "model")
    search_fields = ("user__username", "model_name", "assistant_name")
    list_per_page = 50

    @admin.display(description=_("model"), ordering="model_name")
    def model_label(self, record: UsageRecord) -> str:
        """The catalogue's name for the model, its upstream id on hover."""
        label = record.model.label if record.model else record.model_name
        return format_html('<span title="{}">{}</span>', record.model_name, label)

    @admin.display(description=_("tokens"), ordering="total_tokens")
    def tokens(self, record: UsageRecord) -> str:
        return gettext("%(total)s (%(input)s in · %(output)s out)") % {
            "total": formats.number_format(record.total_tokens, force_grouping=True),
            "input": formats.number_format(record.input_tokens, force_grouping=True),
            "output": formats.number_format(record.output_tokens, force_grouping=True),
        }

    def csv_response(self, queryset) -> HttpResponse:
        """Return the records as a CSV download, times in settings.TIME_ZONE."""
        records = queryset.select_related("user").order_by("created_at", "pk").iterator()
        return csv_download("usage.csv", CSV_HEADER, map(csv_row, records))

    def export_view(self, request) -> HttpResponse:
        totals_order_removed(request)
        return super().export_view(request)

    def changelist_view(self, request, extra_context=None):
        order = totals_order_removed(request)
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is None:  # a redirect, or an action's download
            return response
        response.context_data.update(report(changelist, order))
        return response


def totals_order_removed(request) -> str:
    """Take the totals ranking ("tokens" or "cost") out of the request's query."""
    if TOTALS_ORDER not in request.GET:
        return "tokens"
    request.GET = request.GET.copy()
    return "cost" if request.GET.pop(TOTALS_ORDER)[-1] == "cost" else "tokens"


def report(changelist, order: str) -> dict:
    """Return totals, per-user, per-model and per-assistant sums and a daily chart of what
    is filtered."""
    records = changelist.queryset
    date_filter = next(
        spec for spec in changelist.filter_specs if isinstance(spec, CreatedBetweenFilter)
    )
    first, last = date_filter.days()
    last = last or local_today()
    first = max(
        first or last - datetime.timedelta(days=CHART_DAYS - 1),
        last - datetime.timedelta(days=LONGEST_CHART_DAYS - 1),
    )
    return {
        "report_totals": totals(records),
        # Titles are the site's cost, outside users' quotas: the report says how much.
        "report_title_totals": totals(records.filter(purpose=UsageRecord.Purpose.TITLE)),
        "report_tables": [
            (_("Per user"), totals_by(records, "user__username", order=order)[:25], "user"),
            (
                _("Per model"),
                with_model_labels(totals_by(records, "model_name", order=order)),
                "model",
            ),
            (
                _("Per assistant"),
                totals_by(records, "assistant_name", order=order)[:25],
                "assistant",
            ),
        ],
        "report_order": order,
        "report_order_links": {
            key: changelist.get_query_string({TOTALS_ORDER: key}) for key in ("tokens", "cost")
        },
        "report_first": first,
        "report_last": last,
        "chart": bar_chart(daily_totals(records, first=first, last=last)),
        "time_zone": timezone.get_default_timezone_name(),
    }
