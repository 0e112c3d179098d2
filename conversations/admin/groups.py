"""The audit log of group conversations: invitations, joins, departures, removals, ends.

Rows are written by `conversations.groups.membership`; nobody edits or deletes them.
Who is in a group now, and who wrote each message, shows in admin review (`sharing`).
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _

from conversations.admin.exports import (
    ReadOnlyExportAdmin,
    csv_download,
    local_time,
    spreadsheet_safe,
)
from conversations.admin.filters import CreatedBetweenFilter
from conversations.models import MembershipEvent

__all__ = ["MembershipEventAdmin"]

CSV_HEADER = ("time", "event", "member", "by", "conversation_id", "conversation_title")


def csv_row(row: MembershipEvent) -> tuple:
    return (
        local_time(row.created_at),
        row.kind,
        spreadsheet_safe(row.member_name),
        spreadsheet_safe(row.actor_name),
        row.conversation_ref,
        spreadsheet_safe(row.conversation_title),
    )


@admin.register(MembershipEvent)
class MembershipEventAdmin(ReadOnlyExportAdmin):
    list_display = ("created_at", "kind", "member_name", "actor_name", "conversation_label")
    list_filter = (CreatedBetweenFilter, "kind", ("member", admin.RelatedOnlyFieldListFilter))
    search_fields = ("member_name", "actor_name", "conversation_title", "=conversation_ref")
    list_per_page = 100

    class Media:
        css = {"all": ["chatweb/usage.css"]}  # the date range filter's form

    @admin.display(description=_("conversation"), ordering="conversation_ref")
    def conversation_label(self, row: MembershipEvent) -> str:
        return f"{row.conversation_title or 'Untitled'} (#{row.conversation_ref})"

    def csv_response(self, queryset) -> HttpResponse:
        rows = queryset.order_by("created_at", "pk").iterator()
        return csv_download("group-membership.csv", CSV_HEADER, map(csv_row, rows))
