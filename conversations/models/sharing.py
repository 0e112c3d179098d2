"""Share links, the team's sharing policy, admin review and its audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from conversations.models.chats import Conversation


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
    allow_downloads = models.BooleanField(
        verbose_name=_("readers may download files"),
        default=False,
        help_text=_("Otherwise the transcript shows attached files by name only."),
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
