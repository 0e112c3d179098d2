"""Images attached to messages, stored privately beside their message."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models.chats import Message


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
