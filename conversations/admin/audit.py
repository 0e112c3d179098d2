"""The audit log of transcript reads: filtered, exported, never edited or deleted.

Rows are written by `conversations.sharing.audit` on every read through a share link,
every "continue in a new chat" and every admin review.
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
from conversations.models import TranscriptAccess

__all__ = ["TranscriptAccessAdmin"]

CSV_HEADER = (
    "time",
    "via",
    "viewer",
    "ip_address",
    "user_agent",
    "conversation_id",
    "conversation_title",
    "owner",
    "share_link_id",
)


def csv_row(row: TranscriptAccess) -> tuple:
    return (
        local_time(row.created_at),
        row.via,
        spreadsheet_safe(row.viewer_name or "anonymous"),
        row.ip_address or "",
        spreadsheet_safe(row.user_agent),
        row.conversation_ref,
        spreadsheet_safe(row.conversation_title),
        spreadsheet_safe(row.owner_name),
        row.share_link_id or "",
    )


@admin.register(TranscriptAccess)
class TranscriptAccessAdmin(ReadOnlyExportAdmin):
    """The audit log of transcript reads: filter and export it; nobody edits or deletes it."""

    list_display = (
        "created_at",
        "viewer_label",
        "ip_address",
        "via",
        "conversation_label",
        "owner_name",
        "share_link",
    )
    list_filter = (
        CreatedBetweenFilter,
        "via",
        ("viewer", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("viewer_name", "owner_name", "conversation_title", "=conversation_ref")
    list_per_page = 100

    class Media:
        css = {"all": ["chatweb/usage.css"]}  # the date range filter's form

    @admin.display(description=_("viewer"), ordering="viewer_name")
    def viewer_label(self, row: TranscriptAccess) -> str:
        return row.viewer_name or "anonymous"

    @admin.display(description=_("conversation"), ordering="conversation_ref")
    def conversation_label(self, row: TranscriptAccess) -> str:
        return f"{row.conversation_title or 'Untitled'} (#{row.conversation_ref})"

    def csv_response(self, queryset) -> HttpResponse:
        """Return the rows as a CSV download, times in settings.TIME_ZONE."""
        rows = queryset.order_by("created_at", "pk").iterator()
        return csv_download("transcript-views.csv", CSV_HEADER, map(csv_row, rows))
