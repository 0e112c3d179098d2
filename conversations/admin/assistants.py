"""Assistants: every one on the site, to feature, disable, reassign, review and export.

A save here goes through `record_version`, as the user's own form does, so a change of
instructions, model or options is a new version and the answers written with the old
one still say which they used. The form checks a setup with `assistants.rules`, the
same checks the user's form and JSON import make.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from conversations.assistants import portable, rules
from conversations.assistants.icons import IconError, store_icon
from conversations.assistants.library import record_version
from conversations.assistants.transfer_views import json_download
from conversations.models import STARTER_PROMPT_CHARS, STARTER_PROMPTS, Assistant, AssistantVersion
from conversations.tools import all_tools

__all__ = ["AssistantAdmin", "AssistantAdminForm"]


class LinesField(forms.Field):
    """A list of short texts, typed one per line."""

    widget = forms.Textarea(attrs={"rows": STARTER_PROMPTS})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value) -> list[str]:
        return [line.strip() for line in (value or "").splitlines() if line.strip()]


class AssistantAdminForm(forms.ModelForm):
    """The whole setup, checked by the rules the user's own form shares."""

    class Meta:
        model = Assistant
        fields = (
            "name",
            "description",
            "emoji",
            "owner",
            "instructions",
            "model",
            "reasoning_effort",
            "web_search",
            "tools",
            "lock_options",
            "starter_prompts",
            "visibility",
            "groups",
            "featured",
            "enabled",
        )
        widgets = {"instructions": forms.Textarea(attrs={"rows": 12})}

    starter_prompts = LinesField(label=_("Starter prompts"), required=False)
    icon_upload = forms.FileField(
        label=_("New icon"),
        required=False,
        help_text=_("An image; it is stored as a small square PNG."),
    )
    remove_icon = forms.BooleanField(label=_("Remove the icon"), required=False)
    tools = forms.TypedMultipleChoiceField(
        label=_("Tools"),
        choices=lambda: [(tool.name, f"{tool.name}: {tool.description}") for tool in all_tools()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("A turn offers those the model may call too."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Said here, not in the field's declaration, to be in the language of the request.
        self.fields["starter_prompts"].help_text = gettext(
            "One per line: at most %(count)d, each up to %(chars)d characters."
        ) % {"count": STARTER_PROMPTS, "chars": STARTER_PROMPT_CHARS}

    def clean_starter_prompts(self) -> list[str]:
        return rules.clean_starter_prompts(self.cleaned_data["starter_prompts"])

    def clean_model(self):
        return rules.clean_model(self.cleaned_data["model"])

    def clean_tools(self) -> list[str]:
        return rules.clean_tools(self.cleaned_data["tools"])

    def clean(self) -> dict:
        """Check what depends on two fields: the effort on the model, groups on visibility."""
        cleaned = super().clean()
        for field, error in rules.clean_dependent_fields(cleaned).items():
            self.add_error(field, error)
        return cleaned


class VersionInline(admin.TabularInline):
    """What each version told the model, newest first, to review old answers against."""

    model = AssistantVersion
    extra = 0
    ordering = ("-number",)
    fields = (
        "number",
        "model_name",
        "reasoning_effort",
        "web_search",
        "tools",
        "created_at",
        "instructions_shown",
    )
    readonly_fields = fields

    # Versions are written by `record_version` alone: nobody adds, edits or deletes one.
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        """Whoever may see the assistant may see its versions: they are part of it."""
        return request.user.has_perm("conversations.view_assistant") or request.user.has_perm(
            "conversations.change_assistant"
        )

    @admin.display(description=_("instructions"))
    def instructions_shown(self, version: AssistantVersion) -> str:
        """The first words, opening to the whole text."""
        if not version.instructions:
            return "-"
        return format_html(
            '<details class="assistant-instructions"><summary>{}</summary><pre>{}</pre></details>',
            Truncator(version.instructions).chars(80),
            version.instructions,
        )


class HandedOverFilter(admin.SimpleListFilter):
    """Assistants that came from a deleted user's account."""

    title = _("handed over")
    parameter_name = "handed_over"

    def lookups(self, request, model_admin):
        return (("yes", _("Yes")), ("no", _("No")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(handed_over_from="")
        if self.value() == "no":
            return queryset.filter(handed_over_from="")
        return queryset


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    form = AssistantAdminForm
    list_display = (
        "shown_name",
        "owner_shown",
        "visibility",
        "model",
        "featured",
        "enabled",
        "version_shown",
    )
    list_filter = (
        "visibility",
        "featured",
        "enabled",
        ("model", admin.RelatedOnlyFieldListFilter),
        HandedOverFilter,
    )
    list_select_related = ("owner", "model")
    search_fields = ("name", "description", "owner__username", "handed_over_from")
    autocomplete_fields = ("owner",)
    filter_horizontal = ("groups",)
    readonly_fields = ("icon_shown", "version", "handed_over_from", "created_at", "updated_at")
    inlines = (VersionInline,)
    actions = ("feature", "unfeature", "enable", "disable", "export_json")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "description",
                    "emoji",
                    ("icon_shown", "icon_upload", "remove_icon"),
                    "owner",
                    "handed_over_from",
                )
            },
        ),
        (
            _("What it tells the model"),
            {
                "fields": (
                    "instructions",
                    "model",
                    "reasoning_effort",
                    "web_search",
                    "tools",
                    "lock_options",
                    "version",
                )
            },
        ),
        (_("Starter prompts"), {"fields": ("starter_prompts",)}),
        (_("Who may use it"), {"fields": ("visibility", "groups", "featured", "enabled")}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )

    class Media:
        css = {"all": ["chatweb/admin-assistants.css"]}

    @admin.display(description=_("name"), ordering="name")
    def shown_name(self, assistant: Assistant) -> str:
        """The name after its icon, or its emoji when it has no icon."""
        if assistant.icon:
            return format_html(
                '<span class="assistant-name"><img src="{}" alt="" width="20" height="20"> {}'
                "</span>",
                reverse("assistant_icon", args=[assistant.pk]),
                assistant.name,
            )
        return format_html(
            '<span class="assistant-name">{} {}</span>', assistant.emoji, assistant.name
        )

    @admin.display(description=_("owner"), ordering="owner__username")
    def owner_shown(self, assistant: Assistant) -> str:
        """The owner, and whose it was when it came from a deleted account."""
        owner = assistant.owner.get_username() if assistant.owner else "-"
        if not assistant.handed_over_from:
            return owner
        return format_html(
            '{}<br><small class="handed-over">{}</small>',
            owner,
            gettext("handed over from %(user)s") % {"user": assistant.handed_over_from},
        )

    @admin.display(description=_("version"), ordering="updated_at")
    def version_shown(self, assistant: Assistant) -> str:
        """The version, and when the assistant last changed (in one column, to fit)."""
        return format_html(
            '{}<br><small class="updated">{}</small>',
            assistant.version,
            formats.date_format(timezone.localtime(assistant.updated_at), "SHORT_DATE_FORMAT"),
        )

    @admin.display(description=_("icon"))
    def icon_shown(self, assistant: Assistant) -> str:
        if not assistant.icon:
            return "-"
        return format_html(
            '<img class="assistant-icon" src="{}" alt="" width="48" height="48">',
            reverse("assistant_icon", args=[assistant.pk]),
        )

    def save_model(self, request, obj: Assistant, form, change: bool) -> None:
        """Save through `record_version`: a new version when what answers changed.

        An icon that cannot be one leaves the old icon and is said; the rest is saved.
        """
        upload = form.cleaned_data.get("icon_upload")
        try:
            if upload:
                store_icon(obj, upload)
            elif form.cleaned_data.get("remove_icon") and obj.icon:
                obj.icon.delete(save=False)
        except IconError as error:
            self.message_user(
                request,
                gettext("The icon was not changed: %(reason)s") % {"reason": error.user_message},
                messages.ERROR,
            )
        record_version(obj, set(form.changed_data) if change else None)

    def mark(self, request, queryset: QuerySet[Assistant], field: str, value: bool) -> int:
        """Set `field` on the selected assistants, each change in its admin history."""
        changed = list(queryset.exclude(**{field: value}))
        Assistant.objects.filter(pk__in=[a.pk for a in changed]).update(
            **{field: value, "updated_at": timezone.now()}
        )
        for assistant in changed:
            self.log_change(request, assistant, [{"changed": {"fields": [field]}}])
        return len(changed)

    @admin.action(description=_("Feature the selected assistants"), permissions=("change",))
    def feature(self, request, queryset) -> None:
        count = self.mark(request, queryset, "featured", True)
        self.message_user(
            request,
            ngettext(
                "Featured %(count)d assistant: everyone who may use it sees it first.",
                "Featured %(count)d assistants: everyone who may use them sees them first.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Stop featuring the selected assistants"), permissions=("change",))
    def unfeature(self, request, queryset) -> None:
        count = self.mark(request, queryset, "featured", False)
        self.message_user(
            request,
            ngettext(
                "%(count)d assistant is no longer featured.",
                "%(count)d assistants are no longer featured.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Enable the selected assistants"), permissions=("change",))
    def enable(self, request, queryset) -> None:
        count = self.mark(request, queryset, "enabled", True)
        self.message_user(
            request,
            ngettext("Enabled %(count)d assistant.", "Enabled %(count)d assistants.", count)
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Disable the selected assistants"), permissions=("change",))
    def disable(self, request, queryset) -> None:
        count = self.mark(request, queryset, "enabled", False)
        self.message_user(
            request,
            ngettext(
                "Disabled %(count)d assistant: nobody can start or continue a chat with "
                "it; its conversations stay readable.",
                "Disabled %(count)d assistants: nobody can start or continue a chat with "
                "them; their conversations stay readable.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Export as JSON"), permissions=("view",))
    def export_json(self, request, queryset):
        """One assistant as its own file; several as a list, which import also takes."""
        chosen = list(queryset.select_related("model"))
        if len(chosen) == 1:
            return json_download(portable.to_json(chosen[0]), chosen[0].name)
        return json_download([portable.to_json(a) for a in chosen], "chatweb-assistants", ".json")
