"""An assistant's uploaded icon: checked as any image is, then stored as a small PNG.

The upload is decoded with the attachments' safeguards (`validate_image`: formats,
pixel limit, decoder slots) and drawn again at 128 px, so what is stored and served is
our own PNG: no metadata, no animation, no oddity of the uploaded file survives.
"""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

from conversations.attachments.images import (
    DECODERS,
    DECODES,
    AttachmentError,
    describe_bytes,
    validate_image,
)
from conversations.models import Assistant

__all__ = ["ICON_MAX_BYTES", "ICON_SIZE", "IconError", "store_icon"]

ICON_MAX_BYTES = 1024 * 1024
# An icon is shown at 128 px: a picture past 2,000 by 2,000 would cost a full decode
# (and a JSON import may carry several) for nothing. Read from the header, no decoding.
ICON_MAX_PIXELS = 4_000_000
ICON_SIZE = 128


class IconError(Exception):
    """The upload cannot be an icon; `user_message` says why."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


def refuse_large_pictures(uploaded) -> None:
    """Refuse a picture of more than `ICON_MAX_PIXELS`, from its header alone."""
    try:
        uploaded.seek(0)
        with Image.open(uploaded, formats=DECODERS) as image:
            width, height = image.size
    except Exception:
        return  # not an image at all: `validate_image` says so in its own words
    finally:
        uploaded.seek(0)
    if width * height > ICON_MAX_PIXELS:
        raise IconError(
            _("This picture is %(width)s by %(height)s pixels; an icon may have at most %(limit)s.")
            % {"width": width, "height": height, "limit": f"{ICON_MAX_PIXELS:,}"}
        )


def store_icon(assistant: Assistant, uploaded) -> None:
    """Set `assistant.icon` to the upload redrawn as a square PNG (not saved yet: the
    caller saves the assistant), deleting the icon it replaces."""
    size = uploaded.size
    if size > ICON_MAX_BYTES:
        raise IconError(
            _("This icon is larger than %(limit)s. Choose a smaller image.")
            % {"limit": describe_bytes(ICON_MAX_BYTES)}
        )
    refuse_large_pictures(uploaded)
    try:
        validate_image(uploaded)
    except AttachmentError as error:
        raise IconError(error.user_message) from None
    uploaded.seek(0)
    with DECODES.held(), Image.open(uploaded, formats=DECODERS) as image:
        square = ImageOps.fit(
            ImageOps.exif_transpose(image).convert("RGBA"), (ICON_SIZE, ICON_SIZE)
        )
        drawn = io.BytesIO()
        square.save(drawn, "PNG", optimize=True)
    if assistant.icon:
        assistant.icon.delete(save=False)
    assistant.icon.save("icon.png", ContentFile(drawn.getvalue()), save=False)
