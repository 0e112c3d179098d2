"""Serving a stored attachment: the one response every route that hands one out returns.

The owner's attachment URLs, a share link's and the admin review's all answer with
these headers; each route checks who may see the attachment before calling. An image
is shown inline under a fixed name. A document is always a download: a browser must
never render what someone uploaded as a page of this site (an .html file is text we
accept), so anything but a PDF or plain text goes as application/octet-stream, with
nosniff, under the uploader's name made safe for a header.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from urllib.parse import quote

from django.http import FileResponse, Http404, HttpResponse

from conversations.attachments.images import EXTENSIONS, thumbnail_bytes
from conversations.models import Attachment

__all__ = ["attachment_response", "download_disposition", "image_response"]

# The only document types served as themselves; text documents are stored as UTF-8.
SERVED_AS = {"application/pdf": "application/pdf", "text/plain": "text/plain; charset=utf-8"}
UNSAFE_IN_FALLBACK = re.compile(r"[^A-Za-z0-9._ -]+")


def private_headers(response: HttpResponse, disposition: str) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = disposition
    response["Cache-Control"] = "private, max-age=86400"
    return response


def download_disposition(name: str) -> str:
    """Return a Content-Disposition that downloads under `name`, whatever it holds.

    `filename` is an ASCII fallback (letters, digits, dots, dashes, spaces; "file" when
    nothing is left, e.g. a Chinese name); `filename*` (RFC 5987) carries the real name,
    percent-encoded, for every current browser.
    """
    last = PurePosixPath(name.replace("\\", "/")).name
    last = "".join(ch for ch in last if ch.isprintable()).strip() or "file"
    path = PurePosixPath(last)
    stem, suffix = path.stem, path.suffix

    def ascii_only(text: str) -> str:
        folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        return UNSAFE_IN_FALLBACK.sub("_", folded).strip(" ._")

    fallback = (ascii_only(stem) or "file") + (
        "." + ascii_only(suffix) if ascii_only(suffix) else ""
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(last, safe='')}"


def attachment_response(found: Attachment, *, thumbnail: bool = False) -> HttpResponse:
    """Return the attachment to a permitted reader: an image (or its thumbnail, made on
    first request) inline, a document as a download. A document has no thumbnail: 404."""
    if found.is_document:
        if thumbnail:
            raise Http404("A document has no thumbnail.")
        content_type = SERVED_AS.get(found.content_type, "application/octet-stream")
        stored = found.file.storage.open(found.file.name, "rb")
        response = FileResponse(stored, content_type=content_type)
        return private_headers(response, download_disposition(found.original_name))
    if thumbnail:
        content_type, data = thumbnail_bytes(found)
        response = HttpResponse(data, content_type=content_type)
    else:
        content_type = found.content_type
        stored = found.file.storage.open(found.file.name, "rb")
        response = FileResponse(stored, content_type=content_type)
    # A fixed name: the uploader's file name never reaches an image's header.
    extension = EXTENSIONS.get(content_type, "bin")
    return private_headers(response, f'inline; filename="image.{extension}"')


# The name the share-link and admin-review views call; documents are safe through it.
image_response = attachment_response
