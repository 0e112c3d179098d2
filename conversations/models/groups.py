"""The audit log of group conversations: who was invited, joined, left or was removed.

The members themselves are `chats.ConversationMember`, beside the conversation they
belong to: a conversation with members is a group, each member reads and writes it as
the owner does, with their own quota and model access (`ConversationQuerySet.for_member`),
and only the owner manages it (`for_user`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from conversations.models.chats import Conversation

__all__ = ["MembershipEvent"]


class MembershipEvent(models.Model):
    """One line of a group's audit log. Names are copied, so the line outlives the people
    and the conversation it names."""

    class Kind(models.TextChoices):
        INVITED = "invited", _("invited")
        JOINED = "joined", _("joined")
        LEFT = "left", _("left")
        REMOVED = "removed", _("removed")
        ENDED = "ended", _("group ended")
        # Context: the retained transcripts' "account deleted" column is a time.
        DEPARTED = "departed", pgettext_lazy("membership event", "account deleted")

    kind = models.CharField(verbose_name=_("event"), max_length=12, choices=Kind.choices)
    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="membership_events",
    )
    conversation_ref = models.PositiveBigIntegerField(_("conversation id"))
    conversation_title = models.CharField(
        verbose_name=_("conversation title"), max_length=200, blank=True
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField(verbose_name=_("by (name)"), max_length=150, blank=True)
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("member"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    member_name = models.CharField(verbose_name=_("member (name)"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("membership event")
        verbose_name_plural = _("membership events")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.member_name} ({self.conversation_ref})"
