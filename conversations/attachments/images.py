"""Images people attach to messages: validated by content, stored privately, thumbnailed;
and what every attachment shares, images and documents (`documents`) alike.

An upload is checked with Pillow, never by the name or content type the browser sent,
and stored under a random name (see `models.attachment_path`). It belongs to its
uploader until a turn claims it for a message (`claim`, which counts images and
documents against their own limits); from then on whoever may see the conversation may
see the attachment. `can_view` is the one permission check.

Decoding is what costs memory: a 154 KB PNG may claim 6,300 by 6,300 pixels and take
160 MB once decoded. So the pixel count is read from the header before anything is
decoded, every decode in the process waits for one of `CHAT_IMAGE_DECODES` slots
(`DECODES`), and each user may upload `CHAT_UPLOADS_PER_MINUTE` files a minute. The
views that decode are synchronous, so Django runs them in threads, off the event loop.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from PIL import Image, ImageOps

from conversations.attachments.slots import Slots
from conversations.models import Attachment, Conversation
from conversations.params import parse_id

__all__ = [
    "DECODES",
    "EXTENSIONS",
    "AttachmentError",
    "ImageInfo",
    "UploadRateLimited",
    "can_view",
    "check_upload_rate",
    "claim",
    "delete_files",
    "delete_unsent",
    "discard",
    "image_input",
    "save_with_file",
    "store_image",
    "store_upload",
    "thumbnail_bytes",
    "thumbnail_name",
    "validate_image",
    "viewable",
]

logger = logging.getLogger(__name__)

# Pillow format name -> the content type we store and serve. MPO is how Pillow names
# the multi-picture JPEGs many phone cameras write; browsers show them as JPEG.
FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
# Decoders Pillow may try; a JPEG with an MPO header still opens through "JPEG".
DECODERS = ["PNG", "JPEG", "WEBP", "GIF"]
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
THUMBNAIL_SIZE = 320
THUMBNAIL_TYPE = "image/webp"
UPLOAD_WINDOW_SECONDS = 60

NOT_AN_IMAGE = gettext_lazy("This file is not a PNG, JPEG, WebP or GIF image.")


class AttachmentError(Exception):
    """An upload or a claim was refused; `user_message` says why in plain words."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class UploadRateLimited(AttachmentError):
    """The user uploaded their files for this minute; `retry_after` is in seconds."""

    def __init__(self, user_message: str, retry_after: int) -> None:
        super().__init__(user_message)
        self.retry_after = retry_after


# At most CHAT_IMAGE_DECODES images are decoded at once in this process.
DECODES = Slots("CHAT_IMAGE_DECODES")


def upload_count_key(user) -> str:
    return f"uploads:{user.pk}"


def check_upload_rate(user) -> None:
    """Count an upload of `user`'s; raise UploadRateLimited past the minute's allowance.

    Every attempt counts, refused ones too: decoding or reading a hostile file is the
    cost this limits. The count lives in the cache (Redis, shared by every process, when REDIS_URL
    is set) for a minute from the first upload; incrementing keeps that expiry.
    """
    limit = settings.CHAT_UPLOADS_PER_MINUTE
    key = upload_count_key(user)
    cache.add(key, 0, timeout=UPLOAD_WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # the window ended between add and incr
        count = 1
        cache.set(key, count, timeout=UPLOAD_WINDOW_SECONDS)
    if count > limit:
        raise UploadRateLimited(
            ngettext(
                "You can attach %(limit)d file a minute. Wait a minute, then attach it again.",
                "You can attach %(limit)d files a minute. Wait a minute, then attach it again.",
                limit,
            )
            % {"limit": limit},
            UPLOAD_WINDOW_SECONDS,
        )


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    width: int
    height: int


def describe_bytes(size: int) -> str:
    """Return a byte count the way people read it: 10 MB, 512 KB, 900 bytes."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    if size >= 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size} bytes"


def pixel_limit_error(width: int | None = None, height: int | None = None) -> AttachmentError:
    limit = f"{settings.CHAT_MAX_IMAGE_PIXELS:,}"
    if width is None or height is None:
        return AttachmentError(
            _("This image has too many pixels; the limit is %(limit)s pixels.") % {"limit": limit}
        )
    size = f"{width} × {height}"  # noqa: RUF001 - the multiplication sign is meant
    return AttachmentError(
        _("This image is %(size)s pixels; the limit is %(limit)s pixels.")
        % {"size": size, "limit": limit}
    )


def validate_image(uploaded_file) -> ImageInfo:
    """Return what the file is, or raise AttachmentError unless it is an image we accept."""
    size = uploaded_file.size
    if not size:
        raise AttachmentError(_("This file is empty."))
    if size > settings.CHAT_MAX_IMAGE_BYTES:
        raise AttachmentError(
            _("This image is %(size)s; the limit is %(limit)s.")
            % {"size": describe_bytes(size), "limit": describe_bytes(settings.CHAT_MAX_IMAGE_BYTES)}
        )
    try:
        uploaded_file.seek(0)
        # open() reads only the header, so the pixel check runs before any decoding.
        # Pillow refuses outright dimensions far past its own bomb limit.
        with Image.open(uploaded_file, formats=DECODERS) as image:
            image_format, (width, height) = image.format, image.size
            if width * height > settings.CHAT_MAX_IMAGE_PIXELS:
                raise pixel_limit_error(width, height)
        with DECODES.held():
            uploaded_file.seek(0)
            with Image.open(uploaded_file, formats=DECODERS) as image:
                image.verify()
            # verify() leaves the image unusable and does not decode pixel data;
            # decoding the first frame is what catches a truncated JPEG.
            uploaded_file.seek(0)
            with Image.open(uploaded_file, formats=DECODERS) as image:
                image.load()
    except AttachmentError:
        raise
    except Image.DecompressionBombError:
        raise pixel_limit_error() from None
    except Exception:
        # Pillow's decoders raise many kinds of error on hostile or broken input (OSError,
        # SyntaxError, ValueError, struct.error, ...); each means "not an image we take".
        raise AttachmentError(str(NOT_AN_IMAGE)) from None
    finally:
        uploaded_file.seek(0)
    if image_format not in FORMATS:
        raise AttachmentError(str(NOT_AN_IMAGE))
    return ImageInfo(FORMATS[image_format], width, height)


def display_name(name: str | None) -> str:
    """Return the upload's name as display text: its last path part, printable, short."""
    last = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in last if ch.isprintable()).strip()[:200]


def without_metadata(uploaded_file, info: ImageInfo):
    """Return the image re-encoded without EXIF and text chunks, or the file as it is.

    Phone photos carry GPS coordinates and device details in EXIF; the image goes to
    the gateway and, through share links, to other people, so those are dropped. The
    orientation is applied to the pixels first so the picture still stands upright.
    GIFs (often animated) are kept as they are: they carry no EXIF.
    """
    save_as = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}.get(
        info.content_type
    )
    if save_as is None:
        uploaded_file.seek(0)
        return uploaded_file, info.width, info.height
    uploaded_file.seek(0)
    with DECODES.held(), Image.open(uploaded_file, formats=DECODERS) as image:
        upright = ImageOps.exif_transpose(image)
        if save_as == "JPEG" and upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGB")
        cleaned = io.BytesIO()
        options = {"quality": 92} if save_as in ("JPEG", "WEBP") else {}
        upright.save(cleaned, save_as, **options)
        width, height = upright.size
    return ContentFile(cleaned.getvalue()), width, height


def store_upload(*, user, uploaded_file) -> Attachment:
    """Count the upload against the user's minute, then store it as an image."""
    check_upload_rate(user)
    return store_image(user=user, uploaded_file=uploaded_file)


def store_image(*, user, uploaded_file) -> Attachment:
    """Validate and store an upload, without its metadata, as the user's unsent image."""
    info = validate_image(uploaded_file)
    content, width, height = without_metadata(uploaded_file, info)
    attachment = Attachment(
        owner=user,
        content_type=info.content_type,
        original_name=display_name(uploaded_file.name),
        size=content.size,
        width=width,
        height=height,
    )
    return save_with_file(attachment, content)


def save_with_file(attachment: Attachment, content) -> Attachment:
    """Store `content` as the attachment's file, then save the row; no row, no file.

    Storage is outside any transaction: if the row cannot be saved, the file just
    written is deleted again rather than left behind with nothing pointing at it.
    """
    # The name given here is ignored: `attachment_path` picks a random one.
    attachment.file.save("upload", content, save=False)
    try:
        attachment.save()
    except BaseException:
        attachment.file.storage.delete(attachment.file.name)
        raise
    return attachment


def parse_ids(ids: Iterable[int | str]) -> list[int]:
    """Return the ids as distinct integers in their order; the socket sends strings."""
    parsed: list[int] = []
    for raw in ids:
        try:
            value = parse_id(raw)
        except ValueError:
            value = None
        if value is None:
            raise AttachmentError(_("An attached file is not valid; attach it again."))
        if value not in parsed:
            parsed.append(value)
    return parsed


def claim(*, user, ids: Iterable[int | str]) -> list[Attachment]:
    """Return the user's unsent attachments with these ids, in the order given.

    Images and documents each have their own limit per message
    (`CHAT_MAX_IMAGES_PER_MESSAGE`, `CHAT_MAX_FILES_PER_MESSAGE`). Call it inside the
    turn's transaction and set `message` on the result: the rows are locked (on
    PostgreSQL) so two sends cannot both take the same file.
    """
    wanted = parse_ids(ids)
    most_images = settings.CHAT_MAX_IMAGES_PER_MESSAGE
    most_documents = settings.CHAT_MAX_FILES_PER_MESSAGE
    if len(wanted) > most_images + most_documents:  # too many whatever they are
        raise AttachmentError(
            _("A message can carry at most %(images)d images and %(files)d files.")
            % {"images": most_images, "files": most_documents}
        )
    if not wanted:
        return []
    found = {
        attachment.pk: attachment
        for attachment in Attachment.objects.select_for_update().filter(
            owner=user, message__isnull=True, pk__in=wanted
        )
    }
    if len(found) != len(wanted):
        raise AttachmentError(
            _("An attached file is no longer available; remove it and attach it again.")
        )
    claimed = [found[pk] for pk in wanted]
    documents = sum(1 for attachment in claimed if attachment.is_document)
    if len(claimed) - documents > most_images:
        raise too_many(most_images, documents=False)
    if documents > most_documents:
        raise too_many(most_documents, documents=True)
    return claimed


def too_many(limit: int, *, documents: bool) -> AttachmentError:
    if documents:
        text = ngettext(
            "A message can carry at most %(limit)d file.",
            "A message can carry at most %(limit)d files.",
            limit,
        )
    else:
        text = ngettext(
            "A message can carry at most %(limit)d image.",
            "A message can carry at most %(limit)d images.",
            limit,
        )
    return AttachmentError(text % {"limit": limit})


def can_view(user, attachment: Attachment, *, shown_messages: Collection[int] = ()) -> bool:
    """Return whether `user` may see the attachment: the one permission check for them.

    `shown_messages` are messages the caller has already let this reader see (a share
    link's snapshot, a transcript under admin review); their attachments go with them.
    """
    if attachment.message_id is not None and attachment.message_id in shown_messages:
        return True
    if not user.is_authenticated or not user.is_active:
        return False
    if attachment.message_id is None:
        return attachment.owner_id == user.pk
    # A group's members see each other's attachments, as they read each other's words.
    return Conversation.objects.for_member(user).filter(messages=attachment.message_id).exists()


def viewable(
    user, attachment_id: int, *, shown_messages: Collection[int] = ()
) -> Attachment | None:
    """Return the attachment if `user` may see it, else None (the caller answers 404)."""
    found = Attachment.objects.filter(pk=attachment_id).first()
    if found is None or not can_view(user, found, shown_messages=shown_messages):
        return None
    return found


def discard(*, user, attachment_id: int) -> bool:
    """Delete one of the user's unsent attachments; return whether there was one."""
    deleted, _ = Attachment.objects.filter(
        pk=attachment_id, owner=user, message__isnull=True
    ).delete()
    return bool(deleted)


def delete_unsent(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete attachments uploaded but never sent before `older_than` ago; return how many."""
    cutoff = timezone.now() - older_than
    deleted, _ = Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff).delete()
    return deleted


def image_input(attachment: Attachment) -> tuple[str, bytes]:
    """Return the image's content type and bytes, for the gateway's input_image data URL."""
    with attachment.file.storage.open(attachment.file.name, "rb") as stored:
        return attachment.content_type, stored.read()


def thumbnail_name(name: str) -> str:
    return f"{name}.thumb.webp"


def thumbnail_bytes(attachment: Attachment) -> tuple[str, bytes]:
    """Return a WebP at most 320 px on its long side, made once and kept in storage."""
    storage = attachment.file.storage
    name = thumbnail_name(attachment.file.name)
    if storage.exists(name):
        with storage.open(name, "rb") as stored:
            return THUMBNAIL_TYPE, stored.read()
    with (
        DECODES.held(),
        storage.open(attachment.file.name, "rb") as original,
        Image.open(original) as image,
    ):
        # A JPEG then decodes at a fraction of its size, which is all a thumbnail needs.
        image.draft("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        # Phone photos are often stored sideways with an EXIF note to turn them.
        upright = ImageOps.exif_transpose(image)
        has_alpha = "A" in upright.getbands() or "transparency" in upright.info
        # Convert first: resizing a palette image would fall back to nearest-neighbour.
        thumbnail = upright.convert("RGBA" if has_alpha else "RGB")
        thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        buffer = io.BytesIO()
        thumbnail.save(buffer, "WEBP", quality=80)
    data = buffer.getvalue()
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        # Another request made the same thumbnail first; keep theirs, drop our copy.
        storage.delete(saved)
    return THUMBNAIL_TYPE, data


def remove_stored(storage: Storage, name: str) -> None:
    for stored in (name, thumbnail_name(name)):
        try:
            storage.delete(stored)
        except OSError:
            logger.warning("Could not delete stored attachment file %s", stored, exc_info=True)


def delete_files(sender, instance: Attachment, using: str, **kwargs) -> None:
    """Remove a deleted attachment's image and thumbnail once the deletion commits.

    Connected to post_delete in `ConversationsConfig.ready`, so deleting a message, a
    conversation or a user (all cascades) cleans storage too.
    """
    name = instance.file.name
    if name:
        storage = instance.file.storage
        transaction.on_commit(lambda: remove_if_unused(storage, name), using=using)


def remove_if_unused(storage: Storage, name: str) -> None:
    """Remove a stored image no attachment uses any more.

    An edited question shares its images' files with the question it replaces
    (`starts.carry_images`), so deleting one of them must leave the files to the other.
    """
    if not Attachment.objects.filter(file=name).exists():
        remove_stored(storage, name)
