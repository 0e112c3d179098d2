"""Saved prompts: every one on the site, to find, fix or remove one that should not be shared.

People edit their own on the Prompts page; the admin sees them all, whoever may use them.
"""

from __future__ import annotations

from django.contrib import admin

from conversations.models import SavedPrompt

__all__ = ["SavedPromptAdmin"]


@admin.register(SavedPrompt)
class SavedPromptAdmin(admin.ModelAdmin):
    list_display = ("command", "title", "owner", "visibility", "updated_at")
    list_filter = ("visibility",)
    search_fields = ("command", "title", "text", "owner__username")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    filter_horizontal = ("groups",)
    readonly_fields = ("handed_over_from", "created_at", "updated_at")
    fields = (
        "command",
        "title",
        "text",
        "owner",
        "visibility",
        "groups",
        "handed_over_from",
        "created_at",
        "updated_at",
    )
