"""Saving an attachment stores its file first: a row that cannot be saved leaves no file."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from conversations.attachments import images as attachments
from conversations.models import Attachment


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def files_in(media) -> list[str]:
    return sorted(str(path.relative_to(media)) for path in media.rglob("*") if path.is_file())


def image_for(owner) -> Attachment:
    return Attachment(
        owner=owner, content_type="image/png", original_name="a.png", size=3, width=1, height=1
    )


def test_saved_attachment_keeps_its_file(user, media):
    saved = attachments.save_with_file(image_for(user), ContentFile(b"png"))

    assert saved.pk is not None
    assert files_in(media) == [saved.file.name]


def test_attachment_that_cannot_be_saved_leaves_no_file(db, media):
    unsaved_owner = get_user_model()(username="nobody-yet")

    with pytest.raises(ValueError, match="unsaved related object"):
        attachments.save_with_file(image_for(unsaved_owner), ContentFile(b"png"))

    assert files_in(media) == []
    assert not Attachment.objects.exists()
