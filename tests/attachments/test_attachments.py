"""Attached images: validation by content, private serving, claims and storage cleanup."""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import zlib
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections, transaction
from django.test import Client, override_settings
from django.utils import timezone
from django.utils.crypto import get_random_string
from PIL import Image

from conversations.attachments import images as attachments
from conversations.attachments.images import AttachmentError, upload_count_key
from conversations.models import Attachment, Conversation, Message
from tests.support import attacks
from tests.support.waiting import wait_until

NOT_AN_IMAGE = "This file is not a PNG, JPEG, WebP or GIF image."
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script></svg>"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def image_bytes(image_format: str = "PNG", size=(40, 30), mode: str = "RGB", **save) -> bytes:
    # Noise, so lossy formats keep enough data for truncation to show.
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, image_format, **save)
    return buffer.getvalue()


def upload(data: bytes, name: str = "photo.png", content_type: str = "image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def png_header_only(width: int, height: int) -> bytes:
    """Return a PNG that claims the given size but holds almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def stored(user, data: bytes | None = None, name: str = "photo.png") -> Attachment:
    return attachments.store_upload(user=user, uploaded_file=upload(data or image_bytes(), name))


def sent_in_conversation(owner, attachment: Attachment) -> Message:
    conversation = Conversation.objects.create(owner=owner)
    message = Message.objects.create(conversation=conversation, role="user", text="look")
    attachment.message = message
    attachment.save(update_fields=["message"])
    return message


def csrf_client(user) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    token = get_random_string(32)
    client.cookies["csrftoken"] = token
    return client, token


def files_in(media) -> list[str]:
    return sorted(str(path.relative_to(media)) for path in media.rglob("*") if path.is_file())


# --- Validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_validate_accepts_each_format(image_format, content_type):
    info = attachments.validate_image(upload(image_bytes(image_format, (40, 30))))

    assert info == attachments.ImageInfo(content_type, 40, 30)


def test_validate_takes_multi_picture_jpeg_from_phones_as_jpeg():
    image = Image.new("RGB", (40, 30))
    buffer = io.BytesIO()
    image.save(buffer, "MPO", save_all=True, append_images=[image.copy()])

    info = attachments.validate_image(upload(buffer.getvalue(), "IMG_0001.jpg"))

    assert info.content_type == "image/jpeg"


def test_validate_uses_content_not_client_type_or_name():
    data = image_bytes("PNG")

    info = attachments.validate_image(upload(data, "cat.gif", content_type="image/gif"))

    assert info.content_type == "image/png"


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("drawing.svg", SVG, "image/svg+xml"),
        ("drawing.png", SVG, "image/png"),
        ("page.png", b"<!doctype html><html><script>alert(1)</script></html>", "image/png"),
        ("notes.png", b"just some words, not a picture\n" * 20, "image/png"),
        ("scan.bmp", image_bytes("BMP"), "image/bmp"),
        ("scan.tiff", image_bytes("TIFF"), "image/tiff"),
    ],
)
def test_validate_refuses_what_is_not_an_accepted_image(name, data, content_type):
    with pytest.raises(AttachmentError) as refused:
        attachments.validate_image(upload(data, name, content_type))

    assert refused.value.user_message == NOT_AN_IMAGE


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_validate_refuses_truncated_file(image_format):
    data = image_bytes(image_format, (64, 64))

    with pytest.raises(AttachmentError, match="not a PNG"):
        attachments.validate_image(upload(data[: len(data) // 2]))


def test_validate_refuses_png_with_corrupt_data():
    data = bytearray(image_bytes("PNG", (64, 64)))
    idat = data.index(b"IDAT") + 20
    data[idat : idat + 8] = b"\xff" * 8

    with pytest.raises(AttachmentError, match="not a PNG"):
        attachments.validate_image(upload(bytes(data)))


def test_validate_refuses_empty_file():
    with pytest.raises(AttachmentError, match="empty"):
        attachments.validate_image(upload(b""))


@override_settings(CHAT_MAX_IMAGE_BYTES=2048)
def test_validate_refuses_file_over_size_limit_naming_it():
    data = image_bytes("PNG", (64, 64))

    with pytest.raises(AttachmentError) as refused:
        attachments.validate_image(upload(data))

    assert refused.value.user_message.endswith("the limit is 2 KB.")


@override_settings(CHAT_MAX_IMAGE_PIXELS=100)
def test_validate_refuses_image_over_pixel_limit_naming_it():
    with pytest.raises(AttachmentError) as refused:
        attachments.validate_image(upload(image_bytes("GIF", (20, 20))))

    expected = "This image is 20 × 20 pixels; the limit is 100 pixels."  # noqa: RUF001
    assert refused.value.user_message == expected


@pytest.mark.parametrize(("width", "height"), [(8000, 8000), (100_000, 100_000)])
def test_validate_refuses_bomb_dimensions_before_decoding(width, height, decodes):
    with pytest.raises(AttachmentError, match="the limit is 16,000,000 pixels"):
        attachments.validate_image(upload(png_header_only(width, height)))

    assert decodes.calls == 0


def png_of_zeros(width: int, height: int) -> bytes:
    """Return a valid RGBA PNG of transparent pixels, compressed row by row.

    Built without holding the image: the file is small, its pixels are not.
    """
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 4 * width)  # filter byte, then RGBA
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", data)
        + (png_chunk(b"IEND", b""))
    )


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@pytest.fixture(scope="module")
def issue_bomb() -> bytes:
    """The PNG from issue #17: about 154 KB, 6,300 by 6,300 RGBA, 160 MB decoded."""
    return png_of_zeros(6300, 6300)


@pytest.fixture
def decodes(monkeypatch):
    """Count Pillow's decodes (ImageFile.load) as they happen; they still happen."""
    from PIL import ImageFile

    counter = DecodeCounter(ImageFile.ImageFile.load)
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: counter.load(image))
    return counter


class DecodeCounter:
    """Wrap Pillow's decode: count calls and how many run at once, optionally hold them."""

    def __init__(self, original) -> None:
        self.original = original
        self.lock = threading.Lock()
        self.calls = 0
        self.running = 0
        self.most_running = 0
        self.gate = threading.Event()
        self.gate.set()

    def load(self, image):
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            self.gate.wait(timeout=30)
            return self.original(image)
        finally:
            with self.lock:
                self.running -= 1


def test_issue_bomb_is_small_on_disk_and_huge_when_decoded(issue_bomb):
    assert len(issue_bomb) < 200_000
    with Image.open(io.BytesIO(issue_bomb)) as image:
        assert (image.size, image.mode) == ((6300, 6300), "RGBA")


def test_upload_of_issue_bomb_is_refused_by_its_header_without_decoding(
    client, user, issue_bomb, decodes
):
    client.force_login(user)

    response = client.post("/attachments/", {"file": upload(issue_bomb)})

    assert response.status_code == 400
    assert response.json() == {
        "error": "This image is 6300 × 6300 pixels; the limit is 16,000,000 pixels."  # noqa: RUF001
    }
    assert decodes.calls == 0
    assert not Attachment.objects.exists()
    attacks.record(
        "a 154 KB PNG of 6,300 by 6,300 RGBA uploaded (a decompression bomb)",
        before="decoded (~160 MB each); 12 in parallel took Daphne from 1.0 to 2.3 GB",
        observed=f"refused from its header, {decodes.calls} decodes",
    )


def test_accepted_upload_is_decoded_inside_a_slot(client, user, decodes):
    client.force_login(user)

    assert client.post("/attachments/", {"file": upload(image_bytes())}).status_code == 200

    assert decodes.calls >= 1
    assert attachments.DECODES.busy == 0


@pytest.mark.django_db(transaction=True)
@override_settings(CHAT_IMAGE_DECODES=2)
def test_parallel_uploads_decode_at_most_two_images_at_once(user, decodes):
    uploads = 6
    client = Client()
    client.force_login(user)
    statuses: list[int] = []

    def post() -> None:
        try:
            statuses.append(
                client.post("/attachments/", {"file": upload(image_bytes())}).status_code
            )
        finally:
            connections.close_all()

    decodes.gate.clear()  # every decode waits here until all uploads have arrived
    threads = [threading.Thread(target=post) for _ in range(uploads)]
    for thread in threads:
        thread.start()
    slots = attachments.DECODES
    wait_until(
        lambda: slots.busy == 2 and slots.waiting == uploads - 2,
        timeout=20,
        what="two decodes running and the rest waiting",
    )
    held_while_all_waited = decodes.running
    decodes.gate.set()
    for thread in threads:
        thread.join(timeout=30)

    assert held_while_all_waited == 2
    assert decodes.most_running == 2
    assert statuses == [200] * uploads
    assert Attachment.objects.filter(owner=user).count() == uploads


@override_settings(CHAT_UPLOADS_PER_MINUTE=3)
def test_uploads_past_the_per_minute_limit_are_429_with_a_message(client, user, other_user):
    cache.delete_many([upload_count_key(user), upload_count_key(other_user)])
    client.force_login(user)
    for _ in range(3):
        assert client.post("/attachments/", {"file": upload(image_bytes())}).status_code == 200

    refused = client.post("/attachments/", {"file": upload(image_bytes())})

    assert refused.status_code == 429
    assert refused.json() == {
        "error": "You can attach 3 files a minute. Wait a minute, then attach it again."
    }
    assert refused["Retry-After"] == "60"
    assert Attachment.objects.filter(owner=user).count() == 3
    attacks.record(
        "uploads past the per-minute limit",
        before="no limit",
        observed=f"HTTP {refused.status_code} after 3, Retry-After {refused['Retry-After']}",
    )


@override_settings(CHAT_UPLOADS_PER_MINUTE=1)
def test_upload_limit_is_per_user_and_counts_refused_files(client, user, other_user):
    cache.delete_many([upload_count_key(user), upload_count_key(other_user)])
    client.force_login(user)
    assert client.post("/attachments/", {"file": upload(SVG, "x.svg")}).status_code == 400

    assert client.post("/attachments/", {"file": upload(image_bytes())}).status_code == 429
    client.force_login(other_user)
    assert client.post("/attachments/", {"file": upload(image_bytes())}).status_code == 200


# --- Upload ------------------------------------------------------------------------


def test_upload_returns_preview_card(client, user):
    client.force_login(user)

    response = client.post("/attachments/", {"file": upload(image_bytes())})

    attachment = Attachment.objects.get(owner=user)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-remove-attachment="{attachment.pk}"' in html
    assert f'<input type="hidden" name="attachments" value="{attachment.pk}">' in html
    assert f'src="/attachments/{attachment.pk}/thumb/"' in html
    assert attachment.message is None


def test_upload_refused_answers_400_with_the_reason(client, user):
    client.force_login(user)

    response = client.post("/attachments/", {"file": upload(SVG, "x.svg", "image/svg+xml")})

    assert response.status_code == 400
    assert response.json() == {"error": NOT_AN_IMAGE}
    assert not Attachment.objects.exists()


def test_upload_without_file_answers_400(client, user):
    client.force_login(user)

    response = client.post("/attachments/", {})

    assert response.status_code == 400
    assert "error" in response.json()


def test_upload_requires_login(client, db, media):
    response = client.post("/attachments/", {"file": upload(image_bytes())})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Attachment.objects.exists()


def test_upload_without_csrf_token_is_forbidden(user):
    client, _ = csrf_client(user)

    response = client.post("/attachments/", {"file": upload(image_bytes())})

    assert response.status_code == 403
    assert not Attachment.objects.exists()


def test_upload_with_csrf_header_is_accepted(user):
    client, token = csrf_client(user)

    response = client.post(
        "/attachments/", {"file": upload(image_bytes())}, headers={"X-CSRFToken": token}
    )

    assert response.status_code == 200


def test_upload_never_uses_the_file_name_as_a_path(client, user, media):
    client.force_login(user)

    client.post("/attachments/", {"file": upload(image_bytes(), "../../etc/passwd.png")})

    attachment = Attachment.objects.get()
    assert re.fullmatch(rf"attachments/{user.pk}/[0-9a-f]{{32}}", attachment.file.name)
    assert attachment.original_name == "passwd.png"
    assert files_in(media) == [attachment.file.name]


def test_upload_keeps_at_most_200_characters_of_the_name(user):
    attachment = stored(user, name="a" * 300 + ".png")

    assert attachment.original_name == "a" * 200


def stored_bytes(attachment: Attachment) -> bytes:
    with attachment.file.open("rb") as saved:
        return saved.read()


def test_image_input_returns_type_and_stored_bytes(user):
    attachment = stored(user, image_bytes("JPEG"), "photo.jpg")

    assert attachments.image_input(attachment) == ("image/jpeg", stored_bytes(attachment))


# --- Serving ---------------------------------------------------------------------------


def test_uploader_gets_full_image_with_safe_headers(client, user):
    data = image_bytes("WEBP")
    attachment = stored(user, data, 'evil"; filename="x.html')
    client.force_login(user)

    response = client.get(f"/attachments/{attachment.pk}/")

    assert b"".join(response.streaming_content) == stored_bytes(attachment)
    assert response["Content-Type"] == "image/webp"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == 'inline; filename="image.webp"'
    assert response["Cache-Control"] == "private, max-age=86400"


def test_thumbnail_fits_320_pixels_and_is_webp(client, user):
    attachment = stored(user, image_bytes("PNG", (800, 400)))
    client.force_login(user)

    response = client.get(f"/attachments/{attachment.pk}/thumb/")

    assert response["Content-Type"] == "image/webp"
    assert response["Content-Disposition"] == 'inline; filename="image.webp"'
    assert Image.open(io.BytesIO(response.content)).size == (320, 160)


def test_thumbnail_is_made_once_and_kept_in_storage(user, media):
    attachment = stored(user, image_bytes("JPEG", (600, 600)), "big.jpg")
    first = attachments.thumbnail_bytes(attachment)
    thumb = media / attachments.thumbnail_name(attachment.file.name)
    os.utime(thumb, (0, 0))

    assert attachments.thumbnail_bytes(attachment) == first
    assert thumb.stat().st_mtime == 0
    assert len(files_in(media)) == 2


def test_thumbnail_turns_photos_upright_by_exif(user):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    attachment = stored(user, image_bytes("JPEG", (60, 30), exif=exif.tobytes()), "p.jpg")

    _, data = attachments.thumbnail_bytes(attachment)

    assert Image.open(io.BytesIO(data)).size == (30, 60)


def test_thumbnail_of_transparent_gif_keeps_alpha(user):
    # Not noise: palette index 0, the transparent one, must really be used.
    image = Image.new("P", (50, 50), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (10, 10, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, "GIF", transparency=0)
    data = buffer.getvalue()
    attachment = stored(user, data, "anim.gif")

    _, thumb = attachments.thumbnail_bytes(attachment)

    assert Image.open(io.BytesIO(thumb)).mode == "RGBA"


@pytest.mark.parametrize("suffix", ["", "thumb/"])
def test_other_user_gets_404_for_unsent_image(client, user, other_user, suffix):
    attachment = stored(user)
    client.force_login(other_user)

    assert client.get(f"/attachments/{attachment.pk}/{suffix}").status_code == 404


@pytest.mark.parametrize("suffix", ["", "thumb/"])
def test_other_user_gets_404_for_sent_image(client, user, other_user, suffix):
    attachment = stored(user)
    sent_in_conversation(user, attachment)
    client.force_login(other_user)

    assert client.get(f"/attachments/{attachment.pk}/{suffix}").status_code == 404


@pytest.mark.parametrize("suffix", ["", "thumb/"])
def test_conversation_owner_sees_sent_image(client, user, suffix):
    attachment = stored(user)
    sent_in_conversation(user, attachment)
    client.force_login(user)

    assert client.get(f"/attachments/{attachment.pk}/{suffix}").status_code == 200


def test_missing_image_is_404(client, user):
    client.force_login(user)

    assert client.get("/attachments/999999/").status_code == 404


@pytest.mark.parametrize("suffix", ["", "thumb/"])
def test_anonymous_is_sent_to_login(client, user, suffix):
    attachment = stored(user)

    response = client.get(f"/attachments/{attachment.pk}/{suffix}")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_inactive_uploader_may_not_view(user):
    attachment = stored(user)
    user.is_active = False

    assert not attachments.can_view(user, attachment)


# --- Removing from the composer ----------------------------------------------------------


def test_uploader_removes_unsent_image_and_its_file(
    client, user, media, django_capture_on_commit_callbacks
):
    attachment = stored(user)
    attachments.thumbnail_bytes(attachment)
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/attachments/{attachment.pk}/delete/")

    assert response.status_code == 204
    assert not Attachment.objects.exists()
    assert files_in(media) == []


def test_other_user_cannot_remove_an_image(client, user, other_user):
    attachment = stored(user)
    client.force_login(other_user)

    assert client.post(f"/attachments/{attachment.pk}/delete/").status_code == 404
    assert Attachment.objects.filter(pk=attachment.pk).exists()


def test_sent_image_cannot_be_removed_from_the_composer(client, user):
    attachment = stored(user)
    sent_in_conversation(user, attachment)
    client.force_login(user)

    assert client.post(f"/attachments/{attachment.pk}/delete/").status_code == 404


def test_delete_unsent_removes_only_old_unsent_images(user):
    old, recent, sent = stored(user), stored(user), stored(user)
    sent_in_conversation(user, sent)
    Attachment.objects.filter(pk__in=[old.pk, sent.pk]).update(
        created_at=timezone.now() - timedelta(days=2)
    )

    assert attachments.delete_unsent(older_than=timedelta(days=1)) == 1
    assert set(Attachment.objects.values_list("pk", flat=True)) == {recent.pk, sent.pk}


# --- Claims ----------------------------------------------------------------------------


def test_claim_returns_own_unsent_images_in_the_order_given(user):
    first, second = stored(user), stored(user)

    claimed = attachments.claim(user=user, ids=[str(second.pk), first.pk, second.pk])

    assert claimed == [second, first]


def test_claim_of_nothing_is_empty(user):
    assert attachments.claim(user=user, ids=[]) == []


def test_claim_refuses_another_users_image(user, other_user):
    theirs = stored(other_user)

    with pytest.raises(AttachmentError, match="no longer available"):
        attachments.claim(user=user, ids=[theirs.pk])


def test_claim_refuses_an_image_already_sent(user):
    attachment = stored(user)
    sent_in_conversation(user, attachment)

    with pytest.raises(AttachmentError, match="no longer available"):
        attachments.claim(user=user, ids=[attachment.pk])


@pytest.mark.parametrize("bad_id", [999999, "abc", None])
def test_claim_refuses_unknown_or_malformed_ids(user, bad_id):
    attachment = stored(user)

    with pytest.raises(AttachmentError):
        attachments.claim(user=user, ids=[attachment.pk, bad_id])


@override_settings(CHAT_MAX_IMAGES_PER_MESSAGE=2)
def test_claim_refuses_more_images_than_a_message_carries(user):
    ids = [stored(user).pk for _ in range(3)]

    with pytest.raises(AttachmentError, match="at most 2 images"):
        attachments.claim(user=user, ids=ids)


# --- Storage cleanup -----------------------------------------------------------------------


@pytest.mark.parametrize("deleted", ["message", "conversation", "user"])
def test_deleting_what_holds_an_image_removes_its_files(
    user, media, django_capture_on_commit_callbacks, deleted
):
    attachment = stored(user)
    attachments.thumbnail_bytes(attachment)
    message = sent_in_conversation(user, attachment)
    holder = {"message": message, "conversation": message.conversation, "user": user}[deleted]

    with django_capture_on_commit_callbacks(execute=True):
        holder.delete()

    assert not Attachment.objects.exists()
    assert files_in(media) == []


def test_rolled_back_deletion_keeps_the_files(user, media, django_capture_on_commit_callbacks):
    attachment = stored(user)

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        attachment.delete()
        raise RuntimeError("roll back")

    assert callbacks == []
    assert files_in(media) == [attachment.file.name]


def test_uploaded_photo_loses_its_exif_location_but_stays_upright(user):
    image = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif.get_ifd(0x8825)[2] = (52.0, 31.0, 0.0)  # GPS latitude
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    assert Image.open(io.BytesIO(buffer.getvalue())).getexif().get_ifd(0x8825)

    attachment = stored(user, buffer.getvalue(), "photo.jpg")

    with attachment.file.open("rb") as saved, Image.open(saved) as result:
        assert not result.getexif()
        assert result.size == (20, 40)
    assert (attachment.width, attachment.height) == (20, 40)
