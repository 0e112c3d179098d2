"""Token quotas: a user's own limits, their groups' limits, and the site's default.

Django's user and group admins are replaced by versions that carry the limits inline;
a user's page also shows their current use in each period.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Q
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conversations.models import DefaultQuota, GroupQuota, ModelChoice, Quota
from conversations.usage import quotas

__all__ = ["ChatGroupAdmin", "ChatUserAdmin", "DefaultQuotaAdmin"]


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
    most generous limit among them (see conversations/usage/quotas.py).
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
