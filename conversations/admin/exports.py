"""CSV exports from the admin: the download itself, and a read-only admin that offers it.

The usage report and the audit log both export what the admin lists: the selected rows
through an action, or everything the current filters select through `export.csv`.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterable, Sequence

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.admin.mixins import ReadOnlyAdminMixin

__all__ = ["ReadOnlyExportAdmin", "csv_download", "local_time", "spreadsheet_safe"]


def spreadsheet_safe(value: str) -> str:
    """Quote a text cell a spreadsheet would otherwise run as a formula."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value


def local_time(moment: datetime.datetime) -> str:
    """Return the moment in settings.TIME_ZONE, to the second, as CSV cells carry it."""
    return timezone.localtime(moment).isoformat(timespec="seconds")


def csv_download(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> HttpResponse:
    """Return `rows` under `header` as a CSV file the browser downloads as `filename`."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


class ReadOnlyExportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A record nobody edits or deletes from the admin, exported as CSV.

    The action exports the selected rows; `export.csv` exports everything the current
    filters select. Subclasses say how rows become CSV in `csv_response`.
    """

    actions = ("export_csv",)

    def csv_response(self, queryset) -> HttpResponse:
        raise ImproperlyConfigured(f"{type(self).__name__} must say how to write its CSV")

    def get_urls(self):
        meta = self.model._meta
        export = self.admin_site.admin_view(self.export_view)
        return [
            path("export.csv", export, name=f"{meta.app_label}_{meta.model_name}_export"),
            *super().get_urls(),
        ]

    @admin.action(description=_("Export selected rows as CSV"), permissions=("view",))
    def export_csv(self, request, queryset) -> HttpResponse:
        return self.csv_response(queryset)

    def export_view(self, request) -> HttpResponse:
        """Return every row the current filters select, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown or malformed filter.")
        return self.csv_response(changelist.get_queryset(request))
