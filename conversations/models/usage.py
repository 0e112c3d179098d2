"""Token usage per gateway response, the quotas that bound it, the turn gate."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models.catalogue import ModelChoice
from conversations.models.chats import Conversation, Message


class UsageRecord(models.Model):
    """One gateway response's token usage and what it cost, priced when it happened.

    The model name is kept beside the catalogue link so the record still says which
    model ran after an admin deletes or renames the catalogue entry.
    """

    class Purpose(models.TextChoices):
        ANSWER = "answer", _("Answer")
        TITLE = "title", _("Title")
        TOOL_ROUND = "tool_round", _("tool round")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="usage_records",
    )
    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    message = models.ForeignKey(
        Message,
        verbose_name=_("message"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_records",
    )
    model = models.ForeignKey(
        ModelChoice,
        verbose_name=_("model"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    model_name = models.CharField(verbose_name=_("model name"), max_length=255, blank=True)
    # The assistant the answer was written as; its name is kept, as the model's is.
    assistant = models.ForeignKey(
        "Assistant",
        verbose_name=_("assistant"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    assistant_name = models.CharField(verbose_name=_("assistant name"), max_length=80, blank=True)
    input_tokens = models.PositiveIntegerField(verbose_name=_("input tokens"), default=0)
    cached_tokens = models.PositiveIntegerField(_("cached input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(verbose_name=_("output tokens"), default=0)
    reasoning_tokens = models.PositiveIntegerField(verbose_name=_("reasoning tokens"), default=0)
    total_tokens = models.PositiveIntegerField(verbose_name=_("total tokens"), default=0)
    cost = models.DecimalField(verbose_name=_("cost"), max_digits=14, decimal_places=6, default=0)
    estimated = models.BooleanField(
        verbose_name=_("estimated"),
        default=False,
        help_text=_("Counted from the text because the gateway sent no usage."),
    )
    purpose = models.CharField(
        verbose_name=_("purpose"), max_length=16, choices=Purpose.choices, default=Purpose.ANSWER
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")
        indexes = [
            models.Index(fields=["user", "created_at"], name="usage_user_time"),
            models.Index(fields=["created_at"], name="usage_time"),
        ]

    def __str__(self) -> str:
        return _("%(tokens)s tokens on %(model)s") % {
            "tokens": self.total_tokens,
            "model": self.model_name or _("an unknown model"),
        }


class QuotaLimits(models.Model):
    """Token limits per day and per month; empty means "ask the next level", 0 blocks.

    Turns per minute resolve the same way, with the CHAT_TURNS_PER_MINUTE setting as
    the last level.
    """

    tokens_per_day = models.PositiveBigIntegerField(
        verbose_name=_("tokens per day"),
        null=True,
        blank=True,
        help_text=_("Empty: fall back to the next level. 0: blocked."),
    )
    tokens_per_month = models.PositiveBigIntegerField(
        verbose_name=_("tokens per month"),
        null=True,
        blank=True,
        help_text=_("Empty: fall back to the next level. 0: blocked."),
    )
    turns_per_minute = models.PositiveIntegerField(
        verbose_name=_("messages per minute"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Empty: fall back to the next level, then to the site's setting."),
    )

    class Meta:
        abstract = True


class Quota(QuotaLimits):
    """A user's own limits, which win over their groups' and the default policy."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="quota",
    )

    class Meta:
        verbose_name = _("user quota")
        verbose_name_plural = _("user quotas")

    def __str__(self) -> str:
        return _("Quota of %(user)s") % {"user": self.user}


class GroupQuota(QuotaLimits):
    """Limits for a group's members who have none of their own."""

    group = models.OneToOneField(
        "auth.Group", verbose_name=_("group"), on_delete=models.CASCADE, related_name="quota"
    )

    class Meta:
        verbose_name = _("group quota")
        verbose_name_plural = _("group quotas")

    def __str__(self) -> str:
        return _("Quota of group %(group)s") % {"group": self.group}


class DefaultQuota(QuotaLimits):
    """The site-wide policy: one row, pk 1, for everyone without a user or group limit."""

    class Meta:
        verbose_name = _("default quota")
        verbose_name_plural = _("default quotas")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="one_default_quota")]

    def __str__(self) -> str:
        return str(_("Default quota"))

    @classmethod
    def load(cls) -> DefaultQuota:
        """Return the policy row, creating an unlimited one the first time."""
        return cls.objects.get_or_create(pk=1)[0]


class QuotaCounter(models.Model):
    """A user's tokens used and held by answers in flight in one day or month.

    Reservations change it only through conditional UPDATEs; see conversations/quotas.py.
    """

    class Period(models.TextChoices):
        DAY = "day", _("Day")
        MONTH = "month", _("Month")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="quota_counters",
    )
    period = models.CharField(verbose_name=_("period"), max_length=8, choices=Period.choices)
    starts_on = models.DateField(
        verbose_name=_("starts on"), help_text=_("First local day of the period.")
    )
    used = models.BigIntegerField(verbose_name=_("used"), default=0)
    reserved = models.BigIntegerField(verbose_name=_("reserved"), default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "period", "starts_on"], name="one_counter_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.period} from {self.starts_on}"


class TurnGate(models.Model):
    """The row every turn start of a user locks, and when their recent turns started.

    Locking it first makes a user's turn starts take turns, so the concurrency cap and
    the rate limit count every turn started before; see conversations/quotas.py.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="turn_gate",
    )
    # POSIX times of the turns started in the last minute, oldest first.
    recent_starts = models.JSONField(verbose_name=_("recent turn starts"), default=list)

    class Meta:
        verbose_name = _("turn gate")
        verbose_name_plural = _("turn gates")

    def __str__(self) -> str:
        return str(self.user)
