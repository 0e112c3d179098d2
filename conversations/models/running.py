"""The state of an answer while it is being generated, kept apart from its content.

A message row is what was said; while an answer streams, the app also needs to know
which process generates it (to stop it or watch it from another process), what it holds
on the user's quota (to give it back if that process dies) and that the process still
lives. That is runtime state: it exists from the turn's start to its final save, in the
same transactions, and only then.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models.chats import Message

# A running answer whose heartbeat is older than this has lost its process: checkpoints
# beat at least every 10 s, so three missed beats are not a slow database.
ORPHAN_AFTER = timedelta(seconds=30)


class RunningAnswerQuerySet(models.QuerySet):
    def alive(self, now: datetime | None = None) -> RunningAnswerQuerySet:
        """Return the answers whose process has shown a sign of life lately."""
        return self.filter(heartbeat_at__gte=(now or timezone.now()) - ORPHAN_AFTER)


class RunningAnswer(models.Model):
    """An answer being generated: the process that runs it, its quota hold, its heartbeat."""

    message = models.OneToOneField(
        Message,
        verbose_name=_("answer"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="running",
    )
    # The user who asked (in a group, the member who pays): a turn start counts the
    # user's running answers from this table's few rows by this column. Counted through
    # the messages, the count read the status index, which holds an entry for every
    # answer that streamed since the last vacuum (seen: 0.6 s per turn start for a user
    # with 600 conversations).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    # The channel of the process whose Generation streams this answer, so a stop or a
    # late watcher on another process can reach it through the channel layer.
    worker_channel = models.CharField(verbose_name=_("worker channel"), max_length=200, blank=True)
    # The answer's quota hold ({"counter_ids": [...], "amount": n, "input_estimate": n}),
    # kept so the hold of an answer whose process died can be given back.
    quota_hold = models.JSONField(verbose_name=_("quota hold"), default=dict, blank=True)
    started_at = models.DateTimeField(verbose_name=_("started at"), default=timezone.now)
    # Moved on by every checkpoint: recovery leaves alone an answer that beats.
    heartbeat_at = models.DateTimeField(verbose_name=_("heartbeat at"), default=timezone.now)

    objects = RunningAnswerQuerySet.as_manager()

    class Meta:
        verbose_name = _("running answer")
        verbose_name_plural = _("running answers")
        indexes = [models.Index(fields=["heartbeat_at"], name="running_heartbeat")]

    def __str__(self) -> str:
        return str(self.message_id)
