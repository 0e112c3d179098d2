"""Retained transcripts: frozen copies of deleted users' conversations, for review only.

Reading one needs the review permission and is recorded in the audit log, as review of
a live conversation is. They cannot be added or edited here; the app writes them when
an account is deleted (see `conversations.sharing.retention`).
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.admin.mixins import ReviewPermissionMixin
from conversations.models import RetainedTranscript, TranscriptAccess
from conversations.sharing.audit import record_access
from conversations.sharing.pages import render_transcript
from conversations.sharing.retention import retained_transcript

__all__ = ["RetainedTranscriptAdmin"]


@admin.register(RetainedTranscript)
class RetainedTranscriptAdmin(ReviewPermissionMixin, admin.ModelAdmin):
    """Frozen copies of deleted users' conversations: review permission to read, audited."""

    list_display = (
        "__str__",
        "owner_name",
        "model_label",
        "conversation_created_at",
        "conversation_updated_at",
        "retained_at",
    )
    list_filter = ("retained_at",)
    search_fields = ("title", "owner_name", "messages")

    def get_search_results(self, request, queryset, search_term):
        """Also match the JSON-escaped form of non-ASCII words.

        SQLite keeps JSON as text with JSON's \\u escapes, so "长城" is stored as
        "\\u957f\\u57ce" and a plain search never finds it; PostgreSQL's jsonb reads
        back unescaped, and the plain search there already matches.
        """
        found, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.isascii():
            return found, duplicates
        escaped = json.dumps(search_term)[1:-1]
        also, also_duplicates = super().get_search_results(request, queryset, escaped)
        return found | also, duplicates or also_duplicates

    # Not ReadOnlyAdminMixin: a retained copy may still be deleted by whoever holds the
    # model's delete permission; only adding and editing are closed.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        retained = self.get_object(request, unquote(object_id))
        if retained is None:
            raise Http404("No such transcript.")
        record_access(request, TranscriptAccess.Via.REVIEW, retained=retained)
        deleted = timezone.localtime(retained.retained_at).strftime("%d %b %Y")
        return render_transcript(
            request,
            retained_transcript(retained),
            image_url=None,
            review_back=reverse("admin:conversations_retainedtranscript_changelist"),
            notice=_("Kept when the account was deleted on %(date)s. Its images were deleted.")
            % {"date": deleted},
        )
