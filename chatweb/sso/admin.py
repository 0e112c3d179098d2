"""Admin: who signed in through which provider, and the groups each provider granted."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from chatweb.sso.models import Identity, ProvidedMembership


class ProvidedMembershipInline(admin.TabularInline):
    model = ProvidedMembership
    extra = 0
    fields = ["group", "synced_at"]
    readonly_fields = ["group", "synced_at"]
    can_delete = False
    verbose_name_plural = _("groups from the provider (replaced at every sign-in)")


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["user", "provider", "subject", "signed_in_at", "groups_synced_at", "groups"]
    list_filter = ["provider"]
    search_fields = ["user__username", "user__email", "subject"]
    readonly_fields = ["created_at", "signed_in_at", "groups_synced_at"]
    autocomplete_fields = ["user"]
    inlines = [ProvidedMembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("memberships__group")

    @admin.display(description=_("groups from the provider"))
    def groups(self, identity: Identity) -> str:
        return ", ".join(sorted(m.group.name for m in identity.memberships.all())) or "—"


@admin.register(ProvidedMembership)
class ProvidedMembershipAdmin(admin.ModelAdmin):
    list_display = ["group", "user", "provider", "synced_at"]
    list_filter = ["identity__provider", "group"]
    search_fields = ["group__name", "identity__user__username"]
    list_select_related = ["group", "identity__user"]

    def has_add_permission(self, request):
        return False  # they come from sign-ins only

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("user"), ordering="identity__user__username")
    def user(self, membership: ProvidedMembership):
        return membership.identity.user

    @admin.display(description=_("provider"), ordering="identity__provider")
    def provider(self, membership: ProvidedMembership) -> str:
        return membership.identity.provider
