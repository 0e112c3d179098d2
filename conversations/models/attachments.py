"""Files attached to messages (images and documents), stored privately beside their
message."""

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
    """An image or a document a user uploaded, private to them and the conversations it
    is sent in.

    A document's text is extracted once, when it is uploaded (`attachments.documents`),
    and kept here: a model that takes no files reads it instead, and the quota hold
    counts `token_estimate` before the request is sent.
    """

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        DOCUMENT = "document", _("Document")

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
    kind = models.CharField(
        verbose_name=_("kind"), max_length=16, choices=Kind.choices, default=Kind.IMAGE
    )
    # Office types run past 70 characters (application/vnd.openxmlformats-...).
    content_type = models.CharField(verbose_name=_("content type"), max_length=255)
    original_name = models.CharField(verbose_name=_("original name"), max_length=200, blank=True)
    size = models.PositiveIntegerField(verbose_name=_("size"))
    # An image's size in pixels; empty for a document.
    width = models.PositiveIntegerField(verbose_name=_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(verbose_name=_("height"), null=True, blank=True)
    # A PDF's pages; empty for other files.
    pages = models.PositiveIntegerField(verbose_name=_("pages"), null=True, blank=True)
    extracted_text = models.TextField(verbose_name=_("extracted text"), blank=True)
    # Why a document has no text to show (a code: "no_text" for a scanned PDF).
    extraction_note = models.CharField(verbose_name=_("extraction note"), max_length=32, blank=True)
    token_estimate = models.PositiveIntegerField(
        verbose_name=_("estimated tokens"),
        default=0,
        help_text=_("What the file costs in the model's context, roughly."),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.original_name or _("Attachment %(number)s") % {"number": self.pk}

    @property
    def is_document(self) -> bool:
        return self.kind == self.Kind.DOCUMENT
