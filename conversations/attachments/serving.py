"""Serving a stored image: the one response every route that shows an image returns.

The owner's attachment URLs, a share link's image URLs and the admin review's all
answer with these headers; each route checks who may see the image before calling.
"""

from __future__ import annotations

from django.http import FileResponse, HttpResponse

from conversations.attachments.images import EXTENSIONS, thumbnail_bytes
from conversations.models import Attachment

__all__ = ["image_response"]


def image_headers(response: HttpResponse, content_type: str) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    # A fixed name: the uploader's file name never reaches a header.
    extension = EXTENSIONS.get(content_type, "bin")
    response["Content-Disposition"] = f'inline; filename="image.{extension}"'
    response["Cache-Control"] = "private, max-age=86400"
    return response


def image_response(found: Attachment, *, thumbnail: bool = False) -> HttpResponse:
    """Return the image, or its thumbnail (made on first request), to a permitted reader."""
    if thumbnail:
        content_type, data = thumbnail_bytes(found)
        return image_headers(HttpResponse(data, content_type=content_type), content_type)
    stored = found.file.storage.open(found.file.name, "rb")
    return image_headers(FileResponse(stored, content_type=found.content_type), found.content_type)
