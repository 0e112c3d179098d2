"""The model catalogue admins edit: which models exist and what each accepts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from django.utils.translation import gettext_lazy as _


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
    supports_files = models.BooleanField(
        _("file input"),
        default=False,
        help_text=_(
            "Send PDFs as files (input_file), billed by the gateway. Otherwise, or when the "
            "gateway refuses them, their text is sent."
        ),
    )
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
