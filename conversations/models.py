"""The data a chat keeps: the model catalogue, conversations and their messages."""

from __future__ import annotations

import uuid

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
    supports_reasoning = models.BooleanField("reasoning", default=False)
    supports_web_search = models.BooleanField("web search", default=False)
    supports_images = models.BooleanField("image input", default=False)
    supports_function_tools = models.BooleanField("function tools", default=False)
    reasoning_efforts = models.CharField(
        max_length=100,
        blank=True,
        help_text="Comma-separated efforts the model accepts, e.g. low,medium,high.",
    )
    default_reasoning_effort = models.CharField(max_length=16, blank=True)
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Upper bound sent as max_output_tokens; empty for none."
    )
    price_input = models.DecimalField(
        "input price", max_digits=12, decimal_places=4, default=0, help_text="Per million tokens."
    )
    price_cached_input = models.DecimalField(
        "cached input price",
        max_digits=12,
        decimal_places=4,
        default=0,
        help_text="Per million tokens.",
    )
    price_output = models.DecimalField(
        "output price", max_digits=12, decimal_places=4, default=0, help_text="Per million tokens."
    )
    tools = models.JSONField(
        "enabled tools",
        default=list,
        blank=True,
        help_text="Names of the server-side function tools this model may call.",
    )

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

    @property
    def effort_choices(self) -> list[str]:
        return [effort.strip() for effort in self.reasoning_efforts.split(",") if effort.strip()]


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

    def visible_branch(self) -> list[Message]:
        """Return the messages of the branch on show, root first.

        At each fork the newest child is shown, so a retried answer replaces the one
        it retried. One query, then a walk in memory.
        """
        children: dict[int | None, Message] = {}
        for message in self.messages.order_by("created_at", "pk").prefetch_related("attachments"):
            children[message.parent_id] = message
        branch = []
        node = children.get(None)
        while node is not None:
            branch.append(node)
            node = children.get(node.pk)
        return branch


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
    error_code = models.CharField(max_length=40, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    response_id = models.CharField(max_length=100, blank=True)
    previous_response_id = models.CharField(max_length=100, blank=True)
    # The channel of the process whose Generation streams this answer, so a stop or a
    # late watcher on another process can reach it through the channel layer.
    worker_channel = models.CharField(max_length=200, blank=True)
    # Output items replayed as input when the gateway keeps nothing (store=false).
    replay_items = models.JSONField(default=list, blank=True)
    # The quota hold of a streaming answer ({"counter_ids": [...], "amount": n}), kept
    # so the hold of an answer whose process died can be given back.
    quota_hold = models.JSONField(default=dict, blank=True)
    reasoning_effort = models.CharField(max_length=16, blank=True)
    reasoning_summary = models.TextField(blank=True)
    citations = models.JSONField(default=list, blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    web_searches = models.JSONField(default=list, blank=True)
    # Per-message choices from the composer: web search on, reasoning summary wanted.
    web_search = models.BooleanField(default=False)
    reasoning_summary_mode = models.CharField(max_length=16, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
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


def attachment_path(attachment: Attachment, filename: str) -> str:
    """Store under a random name: the uploaded file name is never used as a path."""
    return f"attachments/{attachment.owner_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """An image a user uploaded, private to them and the conversations it is sent in."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments"
    )
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    file = models.FileField(upload_to=attachment_path)
    content_type = models.CharField(max_length=40)
    original_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.original_name or f"Image {self.pk}"


# --- Usage and quotas ---


class UsageRecord(models.Model):
    """One gateway response's token usage and what it cost, priced when it happened.

    The model name is kept beside the catalogue link so the record still says which
    model ran after an admin deletes or renames the catalogue entry.
    """

    class Purpose(models.TextChoices):
        ANSWER = "answer"
        TITLE = "title"
        TOOL_ROUND = "tool_round", "tool round"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records"
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_records"
    )
    model = models.ForeignKey(
        ModelChoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    model_name = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField("cached input tokens", default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    estimated = models.BooleanField(
        default=False, help_text="Counted from the text because the gateway sent no usage."
    )
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.ANSWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["user", "created_at"], name="usage_user_time"),
            models.Index(fields=["created_at"], name="usage_time"),
        ]

    def __str__(self) -> str:
        return f"{self.total_tokens} tokens on {self.model_name or 'an unknown model'}"


class QuotaLimits(models.Model):
    """Token limits per day and per month; empty means "ask the next level", 0 blocks."""

    tokens_per_day = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: fall back to the next level. 0: blocked."
    )
    tokens_per_month = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: fall back to the next level. 0: blocked."
    )

    class Meta:
        abstract = True


class Quota(QuotaLimits):
    """A user's own limits, which win over their groups' and the default policy."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota"
    )

    class Meta:
        verbose_name = "user quota"

    def __str__(self) -> str:
        return f"Quota of {self.user}"


class GroupQuota(QuotaLimits):
    """Limits for a group's members who have none of their own."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="quota")

    class Meta:
        verbose_name = "group quota"

    def __str__(self) -> str:
        return f"Quota of group {self.group}"


class DefaultQuota(QuotaLimits):
    """The site-wide policy: one row, pk 1, for everyone without a user or group limit."""

    class Meta:
        verbose_name = "default quota"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="one_default_quota")]

    def __str__(self) -> str:
        return "Default quota"

    @classmethod
    def load(cls) -> DefaultQuota:
        """Return the policy row, creating an unlimited one the first time."""
        return cls.objects.get_or_create(pk=1)[0]


class QuotaCounter(models.Model):
    """A user's tokens used and held by answers in flight in one day or month.

    Reservations change it only through conditional UPDATEs; see conversations/quotas.py.
    """

    class Period(models.TextChoices):
        DAY = "day"
        MONTH = "month"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota_counters"
    )
    period = models.CharField(max_length=8, choices=Period.choices)
    starts_on = models.DateField(help_text="First local day of the period.")
    used = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "period", "starts_on"], name="one_counter_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.period} from {self.starts_on}"
