"""The data a chat keeps: the model catalogue, conversations and their messages."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
        verbose_name = _("model")
        verbose_name_plural = _("models")
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
    pinned = models.BooleanField(default=False)
    # The last message of the branch on show: edits and regenerations fork the tree, and
    # the conversation reopens on the branch the user last looked at.
    current_leaf = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
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

        The branch runs through `current_leaf` (the one the user last chose or added to)
        and, below it or where none is set, through the newest child at each fork. Each
        message gets `siblings`: the ids of the alternatives at its place, oldest first,
        for the branch switcher. One query, then a walk in memory.
        """
        children: dict[int | None, list[Message]] = {}
        by_id: dict[int, Message] = {}
        for message in self.messages.order_by("created_at", "pk").prefetch_related("attachments"):
            children.setdefault(message.parent_id, []).append(message)
            by_id[message.pk] = message
        branch: list[Message] = []
        node = by_id.get(self.current_leaf_id) if self.current_leaf_id else None
        while node is not None:
            branch.append(node)
            node = by_id.get(node.parent_id)
        branch.reverse()
        if not branch and children.get(None):
            branch.append(children[None][-1])
        while branch and children.get(branch[-1].pk):
            branch.append(children[branch[-1].pk][-1])
        for message in branch:
            message.siblings = [sibling.pk for sibling in children[message.parent_id]]
        return branch

    def newest_leaf_under(self, message: Message) -> Message:
        """Return the end of the branch below `message`, following the newest children."""
        node = message
        while (child := node.children.order_by("-created_at", "-pk").first()) is not None:
            node = child
        return node


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
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")
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
        verbose_name = _("user quota")
        verbose_name_plural = _("user quotas")

    def __str__(self) -> str:
        return f"Quota of {self.user}"


class GroupQuota(QuotaLimits):
    """Limits for a group's members who have none of their own."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="quota")

    class Meta:
        verbose_name = _("group quota")
        verbose_name_plural = _("group quotas")

    def __str__(self) -> str:
        return f"Quota of group {self.group}"


class DefaultQuota(QuotaLimits):
    """The site-wide policy: one row, pk 1, for everyone without a user or group limit."""

    class Meta:
        verbose_name = _("default quota")
        verbose_name_plural = _("default quotas")
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


# --- Sharing and review ---


def new_share_token() -> str:
    """Return 32 random bytes (256 bits) as URL-safe text: a token nobody can guess."""
    import secrets

    return secrets.token_urlsafe(32)


class SharingPolicy(models.Model):
    """The site-wide sharing switch: one row, pk 1, that admins edit."""

    class Mode(models.TextChoices):
        ON = "on", _("Team and public links")
        TEAM = "team", _("Team links only")
        OFF = "off", _("Off")

    mode = models.CharField(
        max_length=8,
        choices=Mode.choices,
        default=Mode.ON,
        help_text=(
            "Team only: public links ask for sign-in, like team links. Off: no link opens "
            "and none can be made; links come back if sharing is turned on again."
        ),
    )

    class Meta:
        verbose_name = verbose_name_plural = _("sharing policy")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="one_sharing_policy")]

    def __str__(self) -> str:
        return f"Sharing: {self.get_mode_display()}"

    @classmethod
    def load(cls) -> SharingPolicy:
        """Return the policy row, creating the default (sharing on) the first time."""
        return cls.objects.get_or_create(pk=1)[0]


class ShareLinkQuerySet(models.QuerySet):
    def for_owner(self, user) -> ShareLinkQuerySet:
        """Return the links of the conversations `user` owns."""
        return self.filter(conversation__in=Conversation.objects.for_user(user))

    def open(self, now=None) -> ShareLinkQuerySet:
        """Return the links neither revoked nor expired."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ShareLink(models.Model):
    """A read-only snapshot of a conversation's visible branch, behind a random token.

    The snapshot is the list of message ids on show when it was taken, so later turns,
    edits and retries leave the shared transcript as it was until the owner updates it.
    The link dies with its conversation, and so with its owner's account.
    """

    class Visibility(models.TextChoices):
        TEAM = "team", "signed-in team members"
        PUBLIC = "public", "anyone with the link"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="share_links"
    )
    token = models.CharField(max_length=64, unique=True, default=new_share_token, editable=False)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.TEAM)
    message_ids = models.JSONField("snapshot", default=list, help_text="Message ids, root first.")
    snapshot_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("share link")
        verbose_name_plural = _("share links")

    def __str__(self) -> str:
        return f"Share link {self.pk} of {self.conversation}"

    def state(self, now=None) -> str:
        """Return "revoked", "expired" or "active"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            return "expired"
        return "active"

    @property
    def is_open(self) -> bool:
        return self.state() == "active"


class ReviewedConversation(Conversation):
    """Conversations as admin review sees them: read-only, any owner, audited.

    A proxy so the review permission and its admin page stay apart from the owners'
    own conversations.
    """

    class Meta:
        proxy = True
        default_permissions = ()
        permissions = [("review_conversations", "Can read any conversation for review")]
        verbose_name = _("transcript")
        verbose_name_plural = _("transcripts (review)")


class RetainedTranscript(models.Model):
    """A frozen copy of a deleted user's conversation, kept for admin review only.

    Written when an account is deleted and RETAIN_DELETED_USER_CONVERSATIONS is on; it
    points at nothing, so it outlives the user, the conversation and their files.
    """

    conversation_ref = models.PositiveBigIntegerField("conversation id")
    owner_ref = models.PositiveBigIntegerField("owner id")
    owner_name = models.CharField("owner", max_length=150)
    title = models.CharField(max_length=200, blank=True)
    model_label = models.CharField("model", max_length=100, blank=True)
    messages = models.JSONField(default=list, help_text="The visible branch, root first.")
    conversation_created_at = models.DateTimeField("started")
    conversation_updated_at = models.DateTimeField("last activity")
    retained_at = models.DateTimeField("account deleted", default=timezone.now)

    class Meta:
        ordering = ["-retained_at", "-pk"]
        verbose_name = _("retained transcript")
        verbose_name_plural = _("retained transcripts (deleted users)")

    def __str__(self) -> str:
        return self.title or f"Conversation {self.conversation_ref}"


class TranscriptAccess(models.Model):
    """One audit row: someone read a transcript through a share link or admin review.

    Names and ids are copied into the row so it still says who read what after the
    user, the conversation or the link is gone.
    """

    class Via(models.TextChoices):
        LINK = "link", "share link"
        CONTINUE = "continue", "copied from share link"
        REVIEW = "review", "admin review"

    via = models.CharField(max_length=12, choices=Via.choices)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    conversation_ref = models.PositiveBigIntegerField("conversation id")
    conversation_title = models.CharField(max_length=200, blank=True)
    owner_name = models.CharField("owner", max_length=150, blank=True)
    share_link = models.ForeignKey(
        ShareLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="accesses"
    )
    retained = models.ForeignKey(
        RetainedTranscript, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    viewer_name = models.CharField(
        "viewer", max_length=150, blank=True, help_text="Empty for an anonymous visitor."
    )
    ip_address = models.GenericIPAddressField("IP address", null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField("time", default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("transcript view")
        verbose_name_plural = _("transcript views (audit log)")

    def __str__(self) -> str:
        who = self.viewer_name or "anonymous"
        return f"{who} read conversation {self.conversation_ref} via {self.get_via_display()}"


def retain_deleted_users_conversations(sender, instance, **kwargs) -> None:
    """Freeze a deleted user's conversations for review, when the retention setting says so.

    Connected here rather than in `ConversationsConfig.ready` so it is in place whenever
    the models are, whatever deletes the user (admin, shell, management command).
    """
    from conversations import sharing

    sharing.retain_conversations(instance)


models.signals.pre_delete.connect(
    retain_deleted_users_conversations,
    sender=settings.AUTH_USER_MODEL,
    dispatch_uid="retain_deleted_users_conversations",
)


class UserPreference(models.Model):
    """A user's interface settings that follow them to every device."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    language = models.CharField(max_length=16, blank=True, choices=settings.LANGUAGES)

    def __str__(self) -> str:
        return f"{self.user} ({self.language or 'browser language'})"
