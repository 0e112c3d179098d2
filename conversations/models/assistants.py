"""Assistants and saved prompts: a team's reusable setups, each visible to whom its owner says.

Both are `Shared`: owned by one person, visible to just them, to given groups, or to the
whole team (`SharedQuerySet.visible_to` is the one rule). An assistant's instructions go
with every turn of the conversations bound to it, so its `version` goes up whenever
something that changes answers changes, and each answer notes the version it used
(`AssistantVersion` keeps what each version said).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models.catalogue import ModelChoice

# As long as a conversation's own instructions may be (CHAT_MAX_INSTRUCTIONS_CHARS's
# default): they go with every turn, so they cost their length in tokens each time.
ASSISTANT_INSTRUCTIONS_CHARS = 8000
STARTER_PROMPTS = 4
STARTER_PROMPT_CHARS = 300
PROMPT_TEXT_CHARS = 4000


class Visibility(models.TextChoices):
    PRIVATE = "private", _("Just me")
    GROUPS = "groups", _("Given groups")
    TEAM = "team", _("The whole team")


class SharedQuerySet(models.QuerySet):
    def visible_to(self, user) -> SharedQuerySet:
        """Return what `user` may see: their own, their groups', and the team's.

        A subquery rather than a join on the groups, so each row appears once.
        """
        if not user.is_authenticated or not user.is_active:
            return self.none()
        through = self.model.groups.through
        in_groups = through.objects.filter(
            **{self.model._meta.model_name: OuterRef("pk")}, group__user=user
        )
        return self.filter(
            Q(owner=user)
            | Q(visibility=Visibility.TEAM)
            | (Q(visibility=Visibility.GROUPS) & Exists(in_groups))
        )

    def owned_by(self, user) -> SharedQuerySet:
        """Return what `user` may edit: their own, or everything for staff."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        return self if user.is_staff else self.filter(owner=user)


class Shared(models.Model):
    """Something one person made and shares with whom they choose."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        # A deleted owner's shared things pass to a staff member first
        # (`assistants.handover`); this only guards against losing the row.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="%(class)ss",
    )
    visibility = models.CharField(
        verbose_name=_("visible to"),
        max_length=16,
        choices=Visibility.choices,
        default=Visibility.PRIVATE,
    )
    groups = models.ManyToManyField(
        "auth.Group",
        verbose_name=_("groups"),
        blank=True,
        related_name="shared_%(class)ss",
        help_text=_("Who may use it when it is visible to given groups."),
    )
    # Who owned it before their account was deleted, so admins see where it came from.
    handed_over_from = models.CharField(
        verbose_name=_("handed over from"), max_length=150, blank=True
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    objects = SharedQuerySet.as_manager()

    class Meta:
        abstract = True


def icon_path(assistant: Assistant, filename: str) -> str:
    """Store under a random name: the uploaded file name is never used as a path."""
    return f"assistant-icons/{uuid.uuid4().hex}.png"


class Assistant(Shared):
    """A reusable setup: instructions, a model and its options, starter prompts."""

    name = models.CharField(verbose_name=_("name"), max_length=80)
    description = models.CharField(verbose_name=_("description"), max_length=300, blank=True)
    emoji = models.CharField(verbose_name=_("emoji"), max_length=16, blank=True)
    # Re-encoded as a small PNG when uploaded (`assistants.icons`), served privately.
    icon = models.FileField(verbose_name=_("icon"), upload_to=icon_path, blank=True)
    instructions = models.TextField(
        verbose_name=_("instructions"), max_length=ASSISTANT_INSTRUCTIONS_CHARS, blank=True
    )
    model = models.ForeignKey(
        ModelChoice,
        verbose_name=_("model"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assistants",
        help_text=_("Empty: the user's own default model."),
    )
    reasoning_effort = models.CharField(
        verbose_name=_("reasoning effort"), max_length=16, blank=True
    )
    web_search = models.BooleanField(verbose_name=_("web search on"), default=False)
    tools = models.JSONField(
        verbose_name=_("tools"),
        default=list,
        blank=True,
        help_text=_("The model's tools this assistant may call; empty for none."),
    )
    starter_prompts = models.JSONField(verbose_name=_("starter prompts"), default=list, blank=True)
    lock_options = models.BooleanField(
        verbose_name=_("lock model and options"),
        default=False,
        help_text=_("People using it cannot change its model, reasoning effort or web search."),
    )
    featured = models.BooleanField(
        verbose_name=_("featured"), default=False, help_text=_("Shown first to everyone.")
    )
    enabled = models.BooleanField(
        verbose_name=_("enabled"),
        default=True,
        help_text=_("A disabled assistant cannot be used; its conversations stay readable."),
    )
    version = models.PositiveIntegerField(verbose_name=_("version"), default=1)

    class Meta:
        ordering = ["-featured", "name", "pk"]
        verbose_name = _("assistant")
        verbose_name_plural = _("assistants")

    def __str__(self) -> str:
        return self.name


class AssistantVersion(models.Model):
    """What one version of an assistant told the model, for reviewing old answers."""

    assistant = models.ForeignKey(
        Assistant,
        verbose_name=_("assistant"),
        on_delete=models.CASCADE,
        related_name="versions",
    )
    number = models.PositiveIntegerField(verbose_name=_("version"))
    instructions = models.TextField(verbose_name=_("instructions"), blank=True)
    model_name = models.CharField(verbose_name=_("model name"), max_length=255, blank=True)
    reasoning_effort = models.CharField(
        verbose_name=_("reasoning effort"), max_length=16, blank=True
    )
    web_search = models.BooleanField(verbose_name=_("web search on"), default=False)
    tools = models.JSONField(verbose_name=_("tools"), default=list, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)

    class Meta:
        ordering = ["assistant", "-number"]
        verbose_name = _("assistant version")
        verbose_name_plural = _("assistant versions")
        constraints = [
            models.UniqueConstraint(fields=["assistant", "number"], name="one_assistant_version")
        ]

    def __str__(self) -> str:
        return _("%(assistant)s, version %(number)s") % {
            "assistant": self.assistant,
            "number": self.number,
        }


class SavedPrompt(Shared):
    """A snippet of text inserted by typing `/command` in the composer."""

    command = models.CharField(
        verbose_name=_("command"),
        max_length=32,
        help_text=_("Typed after / in the composer: letters, digits, - and _."),
    )
    title = models.CharField(verbose_name=_("title"), max_length=100, blank=True)
    text = models.TextField(
        verbose_name=_("text"),
        max_length=PROMPT_TEXT_CHARS,
        help_text=_("{{name}} marks a place to fill in; Tab moves to the next one."),
    )

    class Meta:
        ordering = ["command", "pk"]
        verbose_name = _("saved prompt")
        verbose_name_plural = _("saved prompts")
        constraints = [
            models.UniqueConstraint(fields=["owner", "command"], name="one_prompt_command")
        ]

    def __str__(self) -> str:
        return f"/{self.command}"
