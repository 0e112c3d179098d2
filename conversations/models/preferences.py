"""A user's interface settings that follow them to every device."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class UserPreference(models.Model):
    """A user's interface settings that follow them to every device."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="preference",
    )
    language = models.CharField(
        verbose_name=_("language"), max_length=16, blank=True, choices=settings.LANGUAGES
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.language or 'browser language'})"
