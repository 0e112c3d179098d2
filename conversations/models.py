"""The data a chat keeps: the model catalogue, conversations and their messages."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ModelChoiceQuerySet(models.QuerySet):
    def enabled(self) -> ModelChoiceQuerySet:
        return self.filter(enabled=True)

    def default(self) -> ModelChoice | None:
        """Return the model new conversations start on: the marked default, else the first."""
        enabled = self.enabled()
        return enabled.filter(is_default=True).first() or enabled.first()

    def with_access(self, user) -> ModelChoiceQuerySet:
        """Annotate whether `user` may use each entry (`usable`) and whether it is the
        default of one of their groups (`group_default`), in the same query."""
        defaults = ModelChoice.default_for_groups.through.objects.filter(
            modelchoice=OuterRef("pk"), group__user=user
        )
        return self.annotate(
            usable=ExpressionWrapper(open_to(user), output_field=BooleanField()),
            group_default=Exists(defaults),
        )

    def usable_by(self, user) -> ModelChoiceQuerySet:
        """Return the enabled entries `user` may use: open to everyone, or to a group of theirs."""
        return self.enabled().with_access(user).filter(usable=True)

    def default_for(self, user) -> ModelChoice | None:
        """Return the model `user`'s new conversations start on (see `preferred`)."""
        return preferred(self.usable_by(user))


def default_context_mode() -> str:
    """Return the context mode of a new catalogue entry: `GATEWAY_STORE` is the site default."""
    return (
        ModelChoice.ContextMode.AUTO if settings.GATEWAY_STORE else ModelChoice.ContextMode.REPLAY
    )


class ModelChoice(models.Model):
    """One entry of the catalogue admins curate: which upstream models people may use.

    Besides what admins set, an entry records what the app learned about the model
    from the gateway: that it keeps no conversation state (`stateless_detected_at`),
    which request parameters it rejected (`unsupported_params`), and that the gateway
    does not know it (`unknown_to_gateway_at`). Admins see the evidence and can reset it.
    """

    class ContextMode(models.TextChoices):
        AUTO = "auto", _("Auto: continue upstream, replay if the gateway forgets")
        SERVER = "server", _("Server: send previous_response_id")
        REPLAY = "replay", _("Replay: send the conversation every turn")

    upstream_id = models.CharField(
        _("upstream model id"), max_length=255, unique=True, help_text=_("Sent as `model`.")
    )
    label = models.CharField(verbose_name=_("label"), max_length=100)
    enabled = models.BooleanField(verbose_name=_("enabled"), default=True)
    is_default = models.BooleanField(_("default"), default=False)
    position = models.PositiveIntegerField(verbose_name=_("position"), default=0)
    supports_reasoning = models.BooleanField(_("reasoning"), default=False)
    supports_web_search = models.BooleanField(_("web search"), default=False)
    supports_images = models.BooleanField(_("image input"), default=False)
    supports_function_tools = models.BooleanField(_("function tools"), default=False)
    reasoning_efforts = models.CharField(
        verbose_name=_("reasoning efforts"),
        max_length=100,
        blank=True,
        help_text=_("Comma-separated efforts the model accepts, e.g. low,medium,high."),
    )
    default_reasoning_effort = models.CharField(
        verbose_name=_("default reasoning effort"), max_length=16, blank=True
    )
    max_output_tokens = models.PositiveIntegerField(
        verbose_name=_("max output tokens"),
        null=True,
        blank=True,
        help_text=_("Upper bound sent as max_output_tokens; empty for none."),
    )
    price_input = models.DecimalField(
        _("input price"),
        max_digits=12,
        decimal_places=4,
        default=0,
        help_text=_("Per million tokens."),
    )
    price_cached_input = models.DecimalField(
        _("cached input price"),
        max_digits=12,
        decimal_places=4,
        default=0,
        help_text=_("Per million tokens."),
    )
    price_output = models.DecimalField(
        _("output price"),
        max_digits=12,
        decimal_places=4,
        default=0,
        help_text=_("Per million tokens."),
    )
    tools = models.JSONField(
        _("enabled tools"),
        default=list,
        blank=True,
        help_text=_("Names of the server-side function tools this model may call."),
    )
    context_mode = models.CharField(
        _("conversation state"),
        max_length=16,
        choices=ContextMode.choices,
        default=default_context_mode,
        help_text=_(
            "How earlier turns reach the model. Auto continues with previous_response_id "
            "and switches to replaying the conversation when the gateway shows it ignores it."
        ),
    )
    stateless_detected_at = models.DateTimeField(
        _("stateless gateway detected"),
        null=True,
        blank=True,
        help_text=_("When Auto found that the gateway ignores previous_response_id."),
    )
    stateless_evidence = models.TextField(
        _("stateless evidence"),
        blank=True,
        help_text=_("What the gateway answered when previous_response_id was sent."),
    )
    context_window = models.PositiveIntegerField(
        _("context window"),
        null=True,
        blank=True,
        help_text=_(
            "Tokens the model reads at most. A replayed conversation longer than this "
            "is cut from its oldest turns; empty for no limit."
        ),
    )
    unsupported_params = models.JSONField(
        _("rejected parameters"),
        default=dict,
        blank=True,
        help_text=_(
            "Request parameters the gateway rejected for this model, with when and what it "
            "said; they are no longer sent. Clear to try them again."
        ),
    )
    unknown_to_gateway_at = models.DateTimeField(
        _("unknown to the gateway since"),
        null=True,
        blank=True,
        help_text=_("Set when the gateway does not list or know this model; cleared on success."),
    )
    unknown_to_gateway_evidence = models.TextField(
        _("unknown to the gateway: evidence"), blank=True
    )
    use_for_titles = models.BooleanField(
        _("use for titles"),
        default=False,
        help_text=_(
            "Write conversation titles with this model. If none is marked, the cheapest "
            "enabled model writes them."
        ),
    )

    groups = models.ManyToManyField(
        "auth.Group",
        verbose_name=_("groups"),
        blank=True,
        related_name="usable_models",
        help_text=_("Only members of these groups may use this model. Empty: everyone may."),
    )
    default_for_groups = models.ManyToManyField(
        "auth.Group",
        verbose_name=_("default for groups"),
        blank=True,
        related_name="default_models",
        help_text=_(
            "Members of these groups start new conversations on this model. A member of "
            "several groups with defaults gets the one highest in the list of models "
            "(lowest position, then label)."
        ),
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

    @property
    def accepts_reasoning(self) -> bool:
        """Return whether turns offer and send reasoning options: on, and not rejected."""
        return self.supports_reasoning and "reasoning" not in (self.unsupported_params or {})

    @property
    def accepts_web_search(self) -> bool:
        """Return whether turns offer and send web search: on, and not rejected."""
        return self.supports_web_search and "tools.web_search" not in (
            self.unsupported_params or {}
        )

    @property
    def accepts_function_tools(self) -> bool:
        """Return whether turns send function tools: on, and not rejected."""
        return self.supports_function_tools and "tools" not in (self.unsupported_params or {})

    @property
    def replays_history(self) -> bool:
        """Return whether turns send the whole branch instead of previous_response_id."""
        if self.context_mode == self.ContextMode.REPLAY:
            return True
        return self.context_mode == self.ContextMode.AUTO and self.stateless_detected_at is not None


def open_to(user) -> Q:
    """Return the condition that a catalogue entry is open to `user`.

    An entry limited to no group is open to everyone; one limited to groups is open to
    their members. Subqueries rather than joins, so each entry appears once.
    """
    limits = ModelChoice.groups.through.objects.filter(modelchoice=OuterRef("pk"))
    return ~Exists(limits) | Exists(limits.filter(group__user=user))


def preferred(models) -> ModelChoice | None:
    """Return the default among `models` (annotated by `with_access`), or None.

    A default of one of the user's groups comes first, then the site's default, then
    the catalogue's order: so a member of several groups with defaults gets the one
    highest in the list, whatever order the groups were joined in.
    """
    return min(
        models,
        key=lambda model: (
            not model.group_default,
            not model.is_default,
            model.position,
            model.label,
            model.pk,
        ),
        default=None,
    )


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user) -> ConversationQuerySet:
        """Return the conversations `user` owns: the one way views and consumers fetch them."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        return self.filter(owner=user)


class Conversation(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        related_name="conversations",
    )
    title = models.CharField(verbose_name=_("title"), max_length=200, blank=True)
    model = models.ForeignKey(
        ModelChoice, verbose_name=_("model"), on_delete=models.SET_NULL, null=True, blank=True
    )
    instructions = models.TextField(verbose_name=_("instructions"), blank=True)
    archived = models.BooleanField(verbose_name=_("archived"), default=False)
    pinned = models.BooleanField(verbose_name=_("pinned"), default=False)
    # The last message of the branch on show: edits and regenerations fork the tree, and
    # the conversation reopens on the branch the user last looked at.
    current_leaf = models.ForeignKey(
        "Message",
        verbose_name=_("current leaf"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(
        verbose_name=_("updated at"), default=timezone.now, help_text=_("Last activity.")
    )

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [
            models.Index(fields=["owner", "archived", "-updated_at"], name="conversation_sidebar"),
        ]

    def __str__(self) -> str:
        return self.title or _("Conversation %(number)s") % {"number": self.pk}

    def visible_branch(
        self, *, attachments: bool = True, fields: tuple[str, ...] | None = None
    ) -> list[Message]:
        """Return the messages of the branch on show, root first.

        The branch runs through `current_leaf` (the one the user last chose or added to)
        and, below it or where none is set, through the newest child at each fork. Each
        message gets `siblings`: the ids of the alternatives at its place, oldest first,
        for the branch switcher. One query, then a walk in memory; a second one for the
        messages' images unless `attachments` is false (a caller that needs none).
        `fields` limits the columns loaded, for a caller that reads only those: the rows
        of a long conversation cost more to build than to fetch.
        """
        children: dict[int | None, list[Message]] = {}
        by_id: dict[int, Message] = {}
        messages = self.messages.order_by("created_at", "pk")
        if attachments:
            messages = messages.prefetch_related("attachments")
        if fields is not None:
            messages = messages.only("pk", "parent_id", "created_at", *fields)
        for message in messages:
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
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")

    class Status(models.TextChoices):
        STREAMING = "streaming", _("Streaming")
        COMPLETE = "complete", _("Complete")
        INCOMPLETE = "incomplete", _("cut off")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("stopped")
        INTERRUPTED = "interrupted", _("Interrupted")

    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        on_delete=models.CASCADE,
        related_name="messages",
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="children",
    )
    role = models.CharField(verbose_name=_("role"), max_length=16, choices=Role.choices)
    text = models.TextField(verbose_name=_("text"), blank=True)
    status = models.CharField(
        verbose_name=_("status"), max_length=16, choices=Status.choices, default=Status.COMPLETE
    )
    error = models.TextField(
        verbose_name=_("error"), blank=True, help_text=_("What went wrong, in words for the user.")
    )
    error_code = models.CharField(verbose_name=_("error code"), max_length=40, blank=True)
    # What the gateway itself said when the answer failed (redacted): for staff, not users.
    error_detail = models.TextField(
        verbose_name=_("error detail"),
        blank=True,
        help_text=_("What the model service said, for administrators."),
    )
    # Notes the bubble shows about how the answer was made, as codes with their numbers
    # ({"code": "turns_left_out", "count": 3}), translated when displayed.
    notes = models.JSONField(verbose_name=_("notes"), default=list, blank=True)
    model_name = models.CharField(verbose_name=_("model name"), max_length=255, blank=True)
    # Gateway ids have no length a gateway cannot exceed (LiteLLM's are ~430 characters).
    response_id = models.TextField(verbose_name=_("response id"), blank=True)
    previous_response_id = models.TextField(verbose_name=_("previous response id"), blank=True)
    # The channel of the process whose Generation streams this answer, so a stop or a
    # late watcher on another process can reach it through the channel layer.
    worker_channel = models.CharField(verbose_name=_("worker channel"), max_length=200, blank=True)
    # Output items replayed as input when the gateway keeps nothing (store=false).
    replay_items = models.JSONField(verbose_name=_("replay items"), default=list, blank=True)
    # The quota hold of a streaming answer ({"counter_ids": [...], "amount": n}), kept
    # so the hold of an answer whose process died can be given back.
    quota_hold = models.JSONField(verbose_name=_("quota hold"), default=dict, blank=True)
    reasoning_effort = models.CharField(
        verbose_name=_("reasoning effort"), max_length=16, blank=True
    )
    reasoning_summary = models.TextField(verbose_name=_("reasoning summary"), blank=True)
    citations = models.JSONField(verbose_name=_("citations"), default=list, blank=True)
    tool_calls = models.JSONField(verbose_name=_("tool calls"), default=list, blank=True)
    web_searches = models.JSONField(verbose_name=_("web searches"), default=list, blank=True)
    # Per-message choices from the composer: web search on, reasoning summary wanted.
    web_search = models.BooleanField(verbose_name=_("web search"), default=False)
    reasoning_summary_mode = models.CharField(
        verbose_name=_("reasoning summary mode"), max_length=16, blank=True
    )
    input_tokens = models.PositiveIntegerField(
        verbose_name=_("input tokens"), null=True, blank=True
    )
    output_tokens = models.PositiveIntegerField(
        verbose_name=_("output tokens"), null=True, blank=True
    )
    reasoning_tokens = models.PositiveIntegerField(
        verbose_name=_("reasoning tokens"), null=True, blank=True
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_transcript"),
            models.Index(fields=["status", "updated_at"], name="message_status"),
        ]

    def __str__(self) -> str:
        return _("%(role)s message %(number)s") % {
            "role": self.get_role_display(),
            "number": self.pk,
        }

    @property
    def is_streaming(self) -> bool:
        return self.status == self.Status.STREAMING

    def mark_without_attachments(self) -> None:
        """Record that this message has no attachments, as a prefetch would, without a query.

        For messages that cannot have any (an answer, a question sent without images, a
        retained transcript's message whose images went with the account). Django's
        `Prefetch` with an empty queryset costs more Python than the query it saves.
        """
        cache = self.__dict__.setdefault("_prefetched_objects_cache", {})
        cache[Message.attachments.rel.cache_name] = Attachment.objects.none()


def attachment_path(attachment: Attachment, filename: str) -> str:
    """Store under a random name: the uploaded file name is never used as a path."""
    return f"attachments/{attachment.owner_id}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """An image a user uploaded, private to them and the conversations it is sent in."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        related_name="attachments",
    )
    message = models.ForeignKey(
        Message,
        verbose_name=_("message"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="attachments",
    )
    file = models.FileField(verbose_name=_("file"), upload_to=attachment_path)
    content_type = models.CharField(verbose_name=_("content type"), max_length=40)
    original_name = models.CharField(verbose_name=_("original name"), max_length=200, blank=True)
    size = models.PositiveIntegerField(verbose_name=_("size"))
    width = models.PositiveIntegerField(verbose_name=_("width"))
    height = models.PositiveIntegerField(verbose_name=_("height"))
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.original_name or _("Image %(number)s") % {"number": self.pk}


# --- Usage and quotas ---


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
        verbose_name=_("mode"),
        max_length=8,
        choices=Mode.choices,
        default=Mode.ON,
        help_text=(
            _(
                "Team only: public links ask for sign-in, like team links. Off: no link opens "
                "and none can be made; links come back if sharing is turned on again."
            )
        ),
    )

    class Meta:
        verbose_name = verbose_name_plural = _("sharing policy")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="one_sharing_policy")]

    def __str__(self) -> str:
        return _("Sharing: %(mode)s") % {"mode": self.get_mode_display()}

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
        TEAM = "team", _("signed-in team members")
        PUBLIC = "public", _("anyone with the link")

    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        on_delete=models.CASCADE,
        related_name="share_links",
    )
    token = models.CharField(
        verbose_name=_("token"), max_length=64, unique=True, default=new_share_token, editable=False
    )
    visibility = models.CharField(
        verbose_name=_("visibility"),
        max_length=8,
        choices=Visibility.choices,
        default=Visibility.TEAM,
    )
    message_ids = models.JSONField(
        _("snapshot"), default=list, help_text=_("Message ids, root first.")
    )
    snapshot_at = models.DateTimeField(verbose_name=_("snapshot at"), default=timezone.now)
    expires_at = models.DateTimeField(verbose_name=_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    revoked_at = models.DateTimeField(verbose_name=_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("revoked by"),
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
        return _("Share link %(number)s of %(conversation)s") % {
            "number": self.pk,
            "conversation": self.conversation,
        }

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
        permissions = [("review_conversations", _("Can read any conversation for review"))]
        verbose_name = _("transcript")
        verbose_name_plural = _("transcripts (review)")


class RetainedTranscript(models.Model):
    """A frozen copy of a deleted user's conversation, kept for admin review only.

    Written when an account is deleted and RETAIN_DELETED_USER_CONVERSATIONS is on; it
    points at nothing, so it outlives the user, the conversation and their files.
    """

    conversation_ref = models.PositiveBigIntegerField(_("conversation id"))
    owner_ref = models.PositiveBigIntegerField(_("owner id"))
    owner_name = models.CharField(_("owner"), max_length=150)
    title = models.CharField(verbose_name=_("title"), max_length=200, blank=True)
    model_label = models.CharField(_("model"), max_length=255, blank=True)
    messages = models.JSONField(
        verbose_name=pgettext_lazy("transcript content", "messages"),
        default=list,
        help_text=_("The visible branch, root first."),
    )
    conversation_created_at = models.DateTimeField(_("started"))
    conversation_updated_at = models.DateTimeField(_("last activity"))
    retained_at = models.DateTimeField(_("account deleted"), default=timezone.now)

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
        LINK = "link", _("share link")
        CONTINUE = "continue", _("copied from share link")
        REVIEW = "review", _("admin review")

    via = models.CharField(verbose_name=_("via"), max_length=12, choices=Via.choices)
    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    conversation_ref = models.PositiveBigIntegerField(_("conversation id"))
    conversation_title = models.CharField(
        verbose_name=_("conversation title"), max_length=200, blank=True
    )
    owner_name = models.CharField(_("owner"), max_length=150, blank=True)
    share_link = models.ForeignKey(
        ShareLink,
        verbose_name=_("share link"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="accesses",
    )
    retained = models.ForeignKey(
        RetainedTranscript,
        verbose_name=_("retained"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("viewer"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    viewer_name = models.CharField(
        _("viewer"), max_length=150, blank=True, help_text=_("Empty for an anonymous visitor.")
    )
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(verbose_name=_("user agent"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

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
