"""One way in for every file the composer uploads: an image or a document, told apart by
content, counted against the user's minute, and a document against their token quota.

A document's text costs tokens in every turn that carries it, so a file that alone
needs more than the user has left (`quotas.tokens_left`) is refused here, before it is
stored, rather than at send time with the message typed.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _

from conversations.attachments import documents, images
from conversations.attachments.images import AttachmentError
from conversations.models import Attachment
from conversations.usage import quotas

__all__ = ["REQUEST_OVERHEAD", "browser_limits", "request_too_large", "store_upload"]

# What a multipart body adds around the file: boundaries, headers, the CSRF field.
REQUEST_OVERHEAD = 64 * 1024


def largest_file() -> int:
    return max(settings.CHAT_MAX_FILE_BYTES, settings.CHAT_MAX_IMAGE_BYTES)


def request_too_large(content_length: str | None) -> bool:
    """Return whether a request's declared length is past any file we would take.

    Checked before the body is parsed: no multipart parsing, no temporary file.
    """
    try:
        declared = int(content_length or 0)
    except ValueError:
        return False  # the parser will find out
    return declared > largest_file() + REQUEST_OVERHEAD


def browser_limits() -> dict:
    """Return what the composer checks before uploading (its form's data attributes)."""
    return {
        "accept": documents.ACCEPT,
        "max_image_bytes": settings.CHAT_MAX_IMAGE_BYTES,
        "max_file_bytes": settings.CHAT_MAX_FILE_BYTES,
        "max_images": settings.CHAT_MAX_IMAGES_PER_MESSAGE,
        "max_files": settings.CHAT_MAX_FILES_PER_MESSAGE,
    }


def store_upload(*, user, uploaded_file) -> Attachment:
    """Check and store an upload as the user's unsent image or document."""
    images.check_upload_rate(user)
    if documents.is_document(uploaded_file):
        return store_document(user=user, uploaded_file=uploaded_file)
    return images.store_image(user=user, uploaded_file=uploaded_file)


def store_document(*, user, uploaded_file) -> Attachment:
    """Read and store a document, unless it alone needs more tokens than the user has."""
    left = quotas.tokens_left(user)
    if left is not None and left <= 0:
        # No need to read the file to know it will not fit.
        raise AttachmentError(_("You have no tokens left, so files cannot be attached now."))
    info = documents.read_document(uploaded_file)
    if left is not None and info.token_estimate > left:
        raise AttachmentError(
            _("This file would take about %(tokens)s tokens, more than the %(left)s you have left.")
            % {"tokens": f"{info.token_estimate:,}", "left": f"{left:,}"}
        )
    attachment = Attachment(
        owner=user,
        kind=Attachment.Kind.DOCUMENT,
        content_type=info.content_type,
        original_name=images.display_name(uploaded_file.name),
        size=len(info.content),
        pages=info.pages,
        extracted_text=info.text,
        extraction_note=info.note,
        token_estimate=info.token_estimate,
    )
    return images.save_with_file(attachment, ContentFile(info.content))
