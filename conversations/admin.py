"""The admin: the model catalogue, token quotas, and the usage report.

Everything here is guarded by Django's model permissions: a staff member sees the
catalogue, the quotas or the usage report only with the matching view permission.
"""

from __future__ import annotations

import csv
import datetime
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_noop, ngettext
from django.utils.translation import gettext_lazy as _

from conversations.attachments import images as attachments
from conversations.catalogue import gateway_models
from conversations.catalogue.upstream import using_simulator
from conversations.gateway.errors import GatewayError
from conversations.models import (
    DefaultQuota,
    GroupQuota,
    Message,
    ModelChoice,
    Quota,
    RetainedTranscript,
    ReviewedConversation,
    ShareLink,
    SharingPolicy,
    TranscriptAccess,
    UsageRecord,
)
from conversations.sharing import links as sharing
from conversations.sharing import views as share_views
from conversations.tools import all_tools
from conversations.usage import quotas
from conversations.usage.charts import bar_chart
from conversations.usage.ledger import daily_totals, totals, totals_by, with_model_labels
from conversations.usage.periods import local_midnight, local_today

# Labels of Django's own admin templates that its Simplified Chinese catalogue lacks (new
# in Django 5.1); marked here so our catalogue, which takes precedence, translates them.
DJANGO_ADMIN_GAPS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
)

# --- Model catalogue -------------------------------------------------------------------


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
    class Meta:
        model = ModelChoice
        fields = (
            "label",
            "upstream_id",
            "enabled",
            "is_default",
            "position",
            "supports_reasoning",
            "supports_web_search",
            "supports_images",
            "supports_function_tools",
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

    tools = forms.TypedMultipleChoiceField(
        choices=lambda: [(tool.name, f"{tool.name}: {tool.description}") for tool in all_tools()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Server-side tools the model may call (needs function tools above).",
    )

    def _get_validation_exclusions(self):
        # Ticking "default" on a second model moves the mark (see make_default); the
        # form must not reject it first for breaking the one-default constraint.
        return super()._get_validation_exclusions() | {"is_default"}

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


# --- Quotas ----------------------------------------------------------------------------


class QuotaInline(admin.StackedInline):
    model = Quota
    max_num = 1
    verbose_name = verbose_name_plural = _("own token limits")
    fields = ("tokens_per_day", "tokens_per_month", "turns_per_minute")


class GroupQuotaInline(admin.StackedInline):
    model = GroupQuota
    max_num = 1
    verbose_name = verbose_name_plural = _("token limits for members")
    fields = ("tokens_per_day", "tokens_per_month", "turns_per_minute")


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class ChatUserAdmin(UserAdmin):
    """Django's user admin with the user's own limits and their current use."""

    inlines = (*UserAdmin.inlines, QuotaInline)
    readonly_fields = (*UserAdmin.readonly_fields, "quota_standing")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not request.user.has_perm("conversations.view_quota"):
            return fieldsets
        return (*fieldsets, (_("Token quota"), {"fields": ("quota_standing",)}))

    @admin.display(description=_("current use"))
    def quota_standing(self, user) -> str:
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    status.label,
                    standing(status),
                    # "no limit" is already said beside the use; a source says it again.
                    status.limit.source if status.limit.tokens is not None else "",
                    gettext("resets %(when)s") % {"when": status.reset_description},
                )
                for status in quotas.status(user)
            ),
        )
        return format_html('<table class="quota-standing">{}</table>', rows)


def standing(status: quotas.PeriodStatus) -> str:
    numbers = {"used": f"{status.used:,}", "reserved": f"{status.reserved:,}"}
    if status.reserved:
        used = gettext("%(used)s tokens used and %(reserved)s held") % numbers
    else:
        used = gettext("%(used)s tokens used") % numbers
    if status.limit.tokens is None:
        return gettext("%(used)s, no limit") % {"used": used}
    return gettext("%(used)s of %(limit)s") % {"used": used, "limit": f"{status.limit.tokens:,}"}


@admin.register(Group)
class ChatGroupAdmin(GroupAdmin):
    """Django's group admin with the limits its members get.

    A member with limits of their own keeps them; a member of several groups gets the
    most generous limit among them (see conversations/quotas.py).
    """

    inlines = (*GroupAdmin.inlines, GroupQuotaInline)
    readonly_fields = ("models_for_members",)

    @admin.display(description=_("models members may use"))
    def models_for_members(self, group: Group) -> str:
        """List the enabled models open to the group, its default marked; set on each model."""
        if group.pk is None:
            return "-"
        open_to_group = (
            ModelChoice.objects.enabled().filter(Q(groups=None) | Q(groups=group)).distinct()
        )
        defaults = set(group.default_models.values_list("pk", flat=True))
        names = [
            gettext("%(model)s (default for members)") % {"model": model.label}
            if model.pk in defaults
            else model.label
            for model in open_to_group
        ]
        return ", ".join(names) or "-"


@admin.register(DefaultQuota)
class DefaultQuotaAdmin(admin.ModelAdmin):
    """The one site-wide policy row: it can be edited, never duplicated or deleted."""

    list_display = ("__str__", "tokens_per_day", "tokens_per_month", "turns_per_minute")
    fields = ("tokens_per_day", "tokens_per_month", "turns_per_minute")

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not DefaultQuota.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        obj.pk = 1
        super().save_model(request, obj, form, change)


# --- Usage report ----------------------------------------------------------------------


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


def spreadsheet_safe(value: str) -> str:
    """Quote a text cell a spreadsheet would otherwise run as a formula."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value


def csv_response(records) -> HttpResponse:
    """Return `records` as a CSV download, times in settings.TIME_ZONE."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="usage.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    for record in records.select_related("user").order_by("created_at", "pk").iterator():
        writer.writerow(
            (
                timezone.localtime(record.created_at).isoformat(timespec="seconds"),
                spreadsheet_safe(record.user.get_username()),
                spreadsheet_safe(record.model_name),
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
        )
    return response


# How the per-user and per-model totals are ranked; not a filter, so it is taken out
# of the query before the changelist sees it.
TOTALS_ORDER = "totals"
CHART_DAYS = 30
LONGEST_CHART_DAYS = 366


class ReadOnlyExportAdmin(admin.ModelAdmin):
    """A record nobody edits or deletes from the admin, exported as CSV.

    The action exports the selected rows; `export.csv` exports everything the current
    filters select. Subclasses say how rows become CSV in `csv_response`.
    """

    actions = ("export_csv",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

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


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyExportAdmin):
    """The usage report: records, totals per user and model, a daily chart, CSV."""

    # Cached and reasoning tokens are in the detail view and the CSV; the token counts
    # share one column so the list fits beside the filters at 1280 px.
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
        "purpose",
        "estimated",
    )
    list_select_related = ("user", "model")
    search_fields = ("user__username", "model_name")
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
        return csv_response(queryset)

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
    """Return totals, per-user and per-model sums and a daily chart of what is filtered."""
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


# --- Sharing and review ----------------------------------------------------------------

REVIEW_PERMISSION = "conversations.review_conversations"


@admin.register(SharingPolicy)
class SharingPolicyAdmin(admin.ModelAdmin):
    """The site-wide sharing switch: one row, edited in place, never added or deleted."""

    fields = ("mode",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        policy = SharingPolicy.load()
        return redirect(reverse("admin:conversations_sharingpolicy_change", args=[policy.pk]))


LINK_STATES = {"active": _("active"), "expired": _("expired"), "revoked": _("revoked")}


class LinkStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return tuple(LINK_STATES.items())

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.open(now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Every share link on the site, to find (paste a token into search) and revoke.

    The token itself is never shown: it opens the transcript, and reading transcripts
    is what the review permission and its audit trail are for.
    """

    list_display = (
        "conversation",
        "owner",
        "visibility",
        "state",
        "messages",
        "created_at",
        "snapshot_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = (LinkStateFilter, "visibility")
    list_select_related = ("conversation__owner",)
    search_fields = ("=token", "conversation__title", "conversation__owner__username")
    fields = (*list_display, "revoked_by")
    readonly_fields = fields
    actions = ("revoke_links",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("owner"), ordering="conversation__owner__username")
    def owner(self, link: ShareLink) -> str:
        return link.conversation.owner.get_username()

    @admin.display(description=_("state"))
    def state(self, link: ShareLink) -> str:
        return LINK_STATES[link.state()]

    @admin.display(description=_("messages"))
    def messages(self, link: ShareLink) -> int:
        return len(link.message_ids)

    @admin.action(description=_("Revoke the selected links"), permissions=("change",))
    def revoke_links(self, request, queryset) -> None:
        revoked = 0
        for link in queryset.filter(revoked_at__isnull=True):
            sharing.revoke(link, by=request.user)
            self.log_change(request, link, "Revoked the link.")
            revoked += 1
        self.message_user(
            request,
            ngettext("Revoked %(count)d link.", "Revoked %(count)d links.", revoked)
            % {"count": revoked},
        )


class ActiveBetweenFilter(CreatedBetweenFilter):
    """Conversations with a message in the chosen days, both ends included."""

    title = _("activity")

    def queryset(self, request, queryset):
        first, last = self.days()
        if not (first or last):
            return queryset
        messages = Message.objects.all()
        if first:
            messages = messages.filter(created_at__gte=local_midnight(first))
        if last:
            messages = messages.filter(
                created_at__lt=local_midnight(last + datetime.timedelta(days=1))
            )
        return queryset.filter(pk__in=messages.values("conversation_id"))


class AnswerModelFilter(admin.SimpleListFilter):
    """The models that answered, by the name kept on each answer."""

    title = _("model")
    parameter_name = "answered_by"

    def lookups(self, request, model_admin):
        names = (
            Message.objects.exclude(model_name="")
            .order_by("model_name")
            .values_list("model_name", flat=True)
            .distinct()
        )
        # Shown by catalogue label, as people know them; filtered by the id answers keep.
        labels = dict(
            ModelChoice.objects.filter(upstream_id__in=names).values_list("upstream_id", "label")
        )
        return [(name, labels.get(name, name)) for name in names]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        answered = Message.objects.filter(model_name=self.value()).values("conversation_id")
        return queryset.filter(pk__in=answered)


def review_only(model_admin: admin.ModelAdmin, request, obj=None) -> bool:
    return request.user.has_perm(REVIEW_PERMISSION)


@admin.register(ReviewedConversation)
class ReviewedConversationAdmin(admin.ModelAdmin):
    """Admin review: find any conversation and read it, read-only; every read is audited."""

    list_display = ("__str__", "owner", "model", "message_count", "created_at", "updated_at")
    list_filter = (
        ActiveBetweenFilter,
        ("owner", admin.RelatedOnlyFieldListFilter),
        AnswerModelFilter,
        "archived",
    )
    list_select_related = ("owner", "model")
    search_fields = ("title", "owner__username", "messages__text")
    list_per_page = 50

    class Media:
        css = {"all": ["chatweb/usage.css"]}  # the date range filter's form

    has_view_permission = review_only
    has_module_permission = review_only

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        # A subquery, not Count("messages"): searching message text joins the messages
        # again, and a join's count would multiply by the number of matching messages.
        counts = (
            Message.objects.filter(conversation=OuterRef("pk"))
            .order_by()
            .values("conversation")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return super().get_queryset(request).annotate(message_count=Coalesce(Subquery(counts), 0))

    @admin.display(description=_("messages"), ordering="message_count")
    def message_count(self, conversation) -> int:
        return conversation.message_count

    def changelist_view(self, request, extra_context=None):
        subtitle = gettext("Search by text, owner or title. Opening a transcript is recorded.")
        return super().changelist_view(request, {"subtitle": subtitle, **(extra_context or {})})

    def get_urls(self):
        image = self.admin_site.admin_view(self.image_view)
        name = "conversations_reviewedconversation"
        return [
            path("<path:object_id>/images/<int:pk>/", image, name=f"{name}_image"),
            path(
                "<path:object_id>/images/<int:pk>/thumb/",
                image,
                {"thumbnail": True},
                name=f"{name}_image_thumbnail",
            ),
            *super().get_urls(),
        ]

    def reviewed(self, request, object_id: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        conversation = self.get_object(request, unquote(object_id))
        if conversation is None:
            raise Http404("No such conversation.")
        return conversation

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Show the transcript as its owner sees it, and record who looked."""
        conversation = self.reviewed(request, object_id)
        share_views.audit(request, TranscriptAccess.Via.REVIEW, conversation=conversation)
        back = reverse("admin:conversations_reviewedconversation_changelist")
        if filters := request.GET.get("_changelist_filters"):
            back = f"{back}?{filters}"

        def image_url(pk: int, thumbnail: bool) -> str:
            name = "image_thumbnail" if thumbnail else "image"
            return reverse(
                f"admin:conversations_reviewedconversation_{name}", args=[conversation.pk, pk]
            )

        return share_views.render_transcript(
            request,
            sharing.review_transcript(conversation),
            image_url=image_url,
            error_details=True,  # what the gateway said, beside each failed answer
            review_back=back,
        )

    def image_view(self, request, object_id: str, pk: int, thumbnail: bool = False):
        conversation = self.reviewed(request, object_id)
        shown = set(conversation.messages.values_list("pk", flat=True))
        found = attachments.viewable(request.user, pk, shown_messages=shown)
        if found is None:
            raise Http404("No such image.")
        return share_views.image_response(found, thumbnail=thumbnail)


@admin.register(RetainedTranscript)
class RetainedTranscriptAdmin(admin.ModelAdmin):
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

    has_view_permission = review_only
    has_module_permission = review_only

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
        share_views.audit(request, TranscriptAccess.Via.REVIEW, retained=retained)
        deleted = timezone.localtime(retained.retained_at).strftime("%d %b %Y")
        return share_views.render_transcript(
            request,
            sharing.retained_transcript(retained),
            image_url=None,
            review_back=reverse("admin:conversations_retainedtranscript_changelist"),
            notice=_("Kept when the account was deleted on %(date)s. Its images were deleted.")
            % {"date": deleted},
        )


AUDIT_CSV_HEADER = (
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


def audit_csv_response(rows) -> HttpResponse:
    """Return audit rows as a CSV download, times in settings.TIME_ZONE."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="transcript-views.csv"'
    writer = csv.writer(response)
    writer.writerow(AUDIT_CSV_HEADER)
    for row in rows.order_by("created_at", "pk").iterator():
        writer.writerow(
            (
                timezone.localtime(row.created_at).isoformat(timespec="seconds"),
                row.via,
                spreadsheet_safe(row.viewer_name or "anonymous"),
                row.ip_address or "",
                spreadsheet_safe(row.user_agent),
                row.conversation_ref,
                spreadsheet_safe(row.conversation_title),
                spreadsheet_safe(row.owner_name),
                row.share_link_id or "",
            )
        )
    return response


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
        return audit_csv_response(queryset)
