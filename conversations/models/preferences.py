"""A user's settings that follow them to every device: language, custom instructions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# As long as ChatGPT allows for each of its two custom instructions: room for a few
# paragraphs, small beside a model's context, since they go with every turn.
CUSTOM_INSTRUCTIONS_CHARS = 1500


class UserPreference(models.Model):
    """A user's settings that follow them to every device."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="preference",
    )
    language = models.CharField(
        verbose_name=_("language"), max_length=16, blank=True, choices=settings.LANGUAGES
    )

    # Custom instructions: added to the instructions of every conversation that has
    # `Conversation.custom_instructions` on (`conversations.personal`).
    about_me = models.TextField(
        verbose_name=_("what chatweb should know about you"),
        max_length=CUSTOM_INSTRUCTIONS_CHARS,
        blank=True,
    )
    answer_style = models.TextField(
        verbose_name=_("how chatweb should answer"),
        max_length=CUSTOM_INSTRUCTIONS_CHARS,
        blank=True,
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.language or 'browser language'})"
