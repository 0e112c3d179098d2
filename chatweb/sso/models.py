"""Which provider account a user is, and which of their groups a provider granted."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils.translation import gettext_lazy as _


class Identity(models.Model):
    """A user's account at one provider, known by its `sub`, which never changes.

    E-mail addresses and user names are reassigned when people leave; `sub` is not, so
    it is the only thing a returning sign-in is matched by. An admin links an existing
    local account to a provider by adding a row here.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identities"
    )
    provider = models.CharField(_("provider"), max_length=32)
    subject = models.CharField(_("subject (sub)"), max_length=255)
    created_at = models.DateTimeField(_("first sign-in"), auto_now_add=True)
    signed_in_at = models.DateTimeField(_("last sign-in"), null=True, blank=True)
    groups_synced_at = models.DateTimeField(_("groups last synced"), null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in identity")
        verbose_name_plural = _("sign-in identities")
        constraints = [
            models.UniqueConstraint(fields=["provider", "subject"], name="identity_unique_sub")
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.subject}"


class ProvidedMembership(models.Model):
    """A group membership that came from a provider's groups claim.

    Only these are removed when the claim stops naming the group; memberships an admin
    gave by hand are never touched by a sign-in.
    """

    identity = models.ForeignKey(Identity, on_delete=models.CASCADE, related_name="memberships")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="provided_memberships")
    synced_at = models.DateTimeField(_("last synced"))

    class Meta:
        verbose_name = _("group from a provider")
        verbose_name_plural = _("groups from providers")
        constraints = [
            models.UniqueConstraint(fields=["identity", "group"], name="membership_unique_group")
        ]

    def __str__(self) -> str:
        return f"{self.identity} → {self.group}"
