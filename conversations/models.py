"""The data a chat keeps: the model catalogue, conversations and their messages."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ModelChoiceQuerySet(models.QuerySet):
    def enabled(self) -> ModelChoiceQuerySet:
        return self.filter(enabled=True)

    def default(self) -> ModelChoice | None:
        """Return the model new conversations start on: the marked default, else the first."""
        enabled = self.enabled()
        return enabled.filter(is_default=True).first() or enabled.first()


class ModelChoice(models.Model):
    """One entry of the catalogue admins curate: which upstream models people may use."""

    upstream_id = models.CharField(
        "upstream model id", max_length=100, unique=True, help_text="Sent as `model`."
    )
    label = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField("default", default=False)
    position = models.PositiveIntegerField(default=0)

    objects = ModelChoiceQuerySet.as_manager()

    class Meta:
        ordering = ["position", "label"]
        verbose_name = "model"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_model"
            )
        ]

    def __str__(self) -> str:
        return self.label


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user) -> ConversationQuerySet:
        """Return the conversations `user` owns: the one way views and consumers fetch them."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        return self.filter(owner=user)


class Conversation(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    model = models.ForeignKey(ModelChoice, on_delete=models.SET_NULL, null=True, blank=True)
    instructions = models.TextField(blank=True)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, help_text="Last activity.")

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [
            models.Index(fields=["owner", "archived", "-updated_at"], name="conversation_sidebar"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    """One turn's message. Messages form a tree: edits and regenerations are siblings."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming"
        COMPLETE = "complete"
        INCOMPLETE = "incomplete", "cut off"
        FAILED = "failed"
        CANCELLED = "cancelled", "stopped"
        INTERRUPTED = "interrupted"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.TextField(blank=True, help_text="What went wrong, in words for the user.")
    model_name = models.CharField(max_length=100, blank=True)
    response_id = models.CharField(max_length=100, blank=True)
    previous_response_id = models.CharField(max_length=100, blank=True)
    # Output items replayed as input when the gateway keeps nothing (store=false).
    replay_items = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_transcript"),
            models.Index(fields=["status", "updated_at"], name="message_status"),
        ]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk}"

    @property
    def is_streaming(self) -> bool:
        return self.status == self.Status.STREAMING
