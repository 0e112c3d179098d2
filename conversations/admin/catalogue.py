"""The model catalogue: which models exist, what each accepts, and who may use them.

Besides editing, the catalogue checks its models against the gateway's model list and
forgets what the gateway taught the app about a model (stateless context, rejected
parameters), so the app tries again after a gateway upgrade.
"""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from conversations.catalogue import gateway_models
from conversations.catalogue.upstream import using_simulator
from conversations.gateway.errors import GatewayError
from conversations.models import ModelChoice
from conversations.tools import all_tools

__all__ = ["ModelChoiceAdmin", "ModelChoiceForm", "make_default"]


def make_default(model: ModelChoice) -> None:
    """Mark `model` as the default and unmark the previous one, in one transaction.

    The old default is unmarked first: the partial unique index `one_default_model`
    is checked per statement, so two marked rows may never exist even for a moment.
    """
    with transaction.atomic():
        ModelChoice.objects.filter(is_default=True).exclude(pk=model.pk).update(is_default=False)
        model.is_default = True
        model.save()


class ModelChoiceForm(forms.ModelForm):
    """The catalogue entry, with "default" handled by the form rather than the model.

    Ticking "default" on a second model moves the mark (see `make_default`), so the
    model's one-default constraint must not refuse the form first: `is_default` is not
    among the model fields the form edits (the admin excludes it too), which leaves it
    out of model validation, and is offered as a plain field that `save` copies over.
    """

    class Meta:
        model = ModelChoice
        fields = (
            "label",
            "upstream_id",
            "enabled",
            "position",
            "supports_reasoning",
            "supports_web_search",
            "supports_images",
            "supports_function_tools",
            "supports_files",
            "tools",
            "reasoning_efforts",
            "default_reasoning_effort",
            "max_output_tokens",
            "price_input",
            "price_cached_input",
            "price_output",
            "context_mode",
            "context_window",
            "use_for_titles",
            "groups",
            "default_for_groups",
        )
        widgets = {"context_mode": forms.RadioSelect}

    is_default = ModelChoice._meta.get_field("is_default").formfield()

    tools = forms.TypedMultipleChoiceField(
        choices=lambda: [(tool.name, f"{tool.name}: {tool.description}") for tool in all_tools()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Server-side tools the model may call (needs function tools above).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["is_default"].initial = self.instance.is_default

    def save(self, commit: bool = True) -> ModelChoice:
        """Copy "default" onto the model; the admin's `save_model` then moves the mark."""
        self.instance.is_default = self.cleaned_data["is_default"]
        return super().save(commit)

    def clean_use_for_titles(self) -> bool:
        """Refuse a second title model: which of two should write titles is unclear."""
        marked = self.cleaned_data["use_for_titles"]
        other = ModelChoice.objects.filter(use_for_titles=True).exclude(pk=self.instance.pk)
        if marked and (current := other.first()):
            raise forms.ValidationError(
                gettext("%(model)s already writes titles; untick it there first.")
                % {"model": current}
            )
        return marked

    def clean(self) -> dict:
        """Refuse a group default the group may not use: its members would never get it."""
        cleaned = super().clean()
        allowed = set(cleaned.get("groups") or ())
        outside = [g for g in cleaned.get("default_for_groups") or () if g not in allowed]
        if allowed and outside:
            self.add_error(
                "default_for_groups",
                gettext("Members of %(groups)s may not use this model; add them to its groups.")
                % {"groups": ", ".join(sorted(group.name for group in outside))},
            )
        return cleaned


@admin.register(ModelChoice)
class ModelChoiceAdmin(admin.ModelAdmin):
    form = ModelChoiceForm
    # The admin builds its form's fields from the fieldsets, "default" included; this
    # keeps it the form's own field (see ModelChoiceForm) rather than the model's.
    exclude = ("is_default",)
    list_display = (
        "label",
        "upstream_id",
        "enabled",
        "is_default",
        "position",
        "capabilities",
        "effort",
        "max_output",
        "prices",
        "gateway_status",
        "open_to",
    )
    list_editable = ("position", "enabled")
    filter_horizontal = ("groups", "default_for_groups")
    actions = ("mark_default", "check_against_gateway", "forget_lessons")
    change_form_template = "admin/conversations/modelchoice/change_form.html"
    readonly_fields = (
        "stateless_detected_at",
        "stateless_evidence",
        "rejected_parameters",
        "unknown_to_gateway_at",
        "unknown_to_gateway_evidence",
    )
    fieldsets = (
        (
            _("Catalogue"),
            {
                "fields": (
                    "label",
                    "upstream_id",
                    "enabled",
                    "is_default",
                    "position",
                    "use_for_titles",
                )
            },
        ),
        (
            _("Capabilities"),
            {
                "fields": (
                    ("supports_reasoning", "supports_web_search"),
                    ("supports_images", "supports_function_tools"),
                    "supports_files",
                    "reasoning_efforts",
                    "default_reasoning_effort",
                    "max_output_tokens",
                    "tools",
                )
            },
        ),
        (
            _("Gateway behaviour"),
            {
                "description": _(
                    "What the app learned from the gateway's answers. Forget it to make "
                    "the app try again, for example after the gateway was upgraded."
                ),
                "fields": (
                    "context_mode",
                    "context_window",
                    "stateless_detected_at",
                    "stateless_evidence",
                    "rejected_parameters",
                    "unknown_to_gateway_at",
                    "unknown_to_gateway_evidence",
                ),
            },
        ),
        (
            _("Prices per million tokens"),
            {"fields": ("price_input", "price_cached_input", "price_output")},
        ),
        (_("Who may use it"), {"fields": ("groups", "default_for_groups")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description=_("groups"))
    def open_to(self, model: ModelChoice) -> str:
        """Name the groups limited to this model, or say everyone may use it."""
        return ", ".join(sorted(group.name for group in model.groups.all())) or gettext("everyone")

    @admin.display(description=_("capabilities"))
    def capabilities(self, model: ModelChoice) -> str:
        names = [
            (gettext("reasoning"), model.supports_reasoning),
            (gettext("web search"), model.supports_web_search),
            (gettext("images"), model.supports_images),
            (gettext("tools"), model.supports_function_tools),
            (gettext("files"), model.supports_files),
        ]
        return ", ".join(name for name, supported in names if supported) or gettext("text only")

    @admin.display(description=_("effort"), ordering="default_reasoning_effort")
    def effort(self, model: ModelChoice) -> str:
        return model.default_reasoning_effort or "-"

    @admin.display(description=_("max output"), ordering="max_output_tokens")
    def max_output(self, model: ModelChoice) -> str:
        return f"{model.max_output_tokens:,}" if model.max_output_tokens else "-"

    @admin.display(description=_("in/cached/out /M"), ordering="price_output")
    def prices(self, model: ModelChoice) -> str:
        return " / ".join(
            f"{price.normalize():f}"
            for price in (model.price_input, model.price_cached_input, model.price_output)
        )

    @admin.display(description=_("gateway"))
    def gateway_status(self, model: ModelChoice) -> str:
        return "; ".join(gateway_models.gateway_status(model)) or "-"

    @admin.display(description=_("rejected parameters"))
    def rejected_parameters(self, model: ModelChoice) -> str:
        """List each parameter the gateway rejected: when, and what it said."""
        if not model.unsupported_params:
            return "-"
        rows = format_html_join(
            "",
            "<li><code>{}</code> · {} · {}</li>",
            (
                (param, rejected_at(details), details.get("message", ""))
                if isinstance(details, dict)
                else (param, "-", details)
                for param, details in sorted(model.unsupported_params.items())
            ),
        )
        return format_html('<ul class="rejected-parameters">{}</ul>', rows)

    def get_urls(self):
        forget = self.admin_site.admin_view(self.forget_view)
        return [
            path("<path:object_id>/forget/", forget, name="conversations_modelchoice_forget"),
            *super().get_urls(),
        ]

    def forget_view(self, request, object_id: str):
        """The change page's button: forget what the gateway taught us about one model."""
        if request.method != "POST":
            return HttpResponseBadRequest()
        model = self.get_object(request, unquote(object_id))
        if model is None:
            raise Http404("No such model.")
        if not self.has_change_permission(request, model):
            raise PermissionDenied
        self.forget_lessons(request, ModelChoice.objects.filter(pk=model.pk))
        return redirect(reverse("admin:conversations_modelchoice_change", args=[model.pk]))

    def save_model(self, request, obj, form, change) -> None:
        if obj.is_default:
            make_default(obj)
        else:
            super().save_model(request, obj, form, change)

    @admin.action(description=_("Check against the gateway"), permissions=("change",))
    def check_against_gateway(self, request, queryset) -> None:
        """Mark the selected models the gateway's model list leaves out; clear the others."""
        try:
            listed = gateway_models.gateway_model_ids()
        except GatewayError as error:
            self.message_user(
                request,
                gettext("The gateway did not give its model list (%(error)s); nothing changed.")
                % {"error": error},
                messages.ERROR,
            )
            return
        checked = queryset.count()
        missing = gateway_models.mark_unlisted(queryset, listed, now=timezone.now())
        text = ngettext(
            "Checked %(count)d model against the gateway's list",
            "Checked %(count)d models against the gateway's list",
            checked,
        ) % {"count": checked}
        if missing:
            text += ": " + ngettext(
                "%(count)d is missing (%(names)s).",
                "%(count)d are missing (%(names)s).",
                len(missing),
            ) % {"count": len(missing), "names": ", ".join(str(model) for model in missing)}
        else:
            text += ": " + gettext("the gateway lists every one.")
        if using_simulator():
            text += " " + gettext(
                "(No OPENAI_API_KEY is set: this is the built-in simulator's list.)"
            )
        self.message_user(request, text, messages.WARNING if missing else messages.SUCCESS)

    @admin.action(description=_("Forget what the gateway taught us"), permissions=("change",))
    def forget_lessons(self, request, queryset) -> None:
        reset = gateway_models.forget_lessons(queryset)
        self.message_user(
            request,
            ngettext(
                "Forgot what the gateway taught us about %(count)d model; it will be tried "
                "again as configured.",
                "Forgot what the gateway taught us about %(count)d models; they will be "
                "tried again as configured.",
                reset,
            )
            % {"count": reset},
            messages.SUCCESS,
        )

    @admin.action(description=_("Make the selected model the default"), permissions=("change",))
    def mark_default(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, gettext("Select exactly one model."), messages.WARNING)
            return
        model = queryset.get()
        make_default(model)
        self.message_user(request, f"{model} is now the default model.", messages.SUCCESS)


def rejected_at(details: dict) -> str:
    """Return when a parameter was rejected, in local time, or the stored text as it is."""
    stamp = details.get("at", "")
    try:
        moment = datetime.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return str(stamp)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.UTC)
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
