"""Composer images in Chromium: picker, paste, drop, previews, remove, refusals, send."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from conversations.models import Attachment, ModelChoice
from tests.support.browser import RECORDER_JS, SentFrames, wait_for_socket

PREVIEW = "#composer-attachments .attachment-preview:not(.uploading)"


def png(size=(64, 48), colour=(47, 111, 94)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def composer(page, make_user, login):
    """A signed-in chat page whose default model takes images; uploads removed after."""
    ModelChoice.objects.create(
        upstream_id="sim-chat", label="Sim Vision", is_default=True, supports_images=True
    )
    ModelChoice.objects.create(upstream_id="sim-text", label="Sim Text", position=1)
    make_user("ming")
    page.add_init_script(RECORDER_JS)
    page.sent = SentFrames().attach(page)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    yield page
    # The server and this process share DATA_DIR; deleting the rows removes the files.
    for attachment in Attachment.objects.all():
        attachment.delete()


def dispatch_with_file(page, selector: str, events: list[str], data: bytes, name: str) -> None:
    """Fire `events` at `selector` carrying one file, as a paste or a drop would."""
    page.evaluate(
        """([selector, events, b64, name]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            const target = document.querySelector(selector);
            for (const type of events) {
                const event = type === "paste"
                    ? new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true })
                    : new DragEvent(type, {
                        dataTransfer: transfer, bubbles: true, cancelable: true,
                    });
                target.dispatchEvent(event);
            }
        }""",
        [selector, events, base64.b64encode(data).decode(), name],
    )


def thumbnail_loaded(page) -> bool:
    return page.locator(f"{PREVIEW} img").evaluate("(img) => img.complete && img.naturalWidth > 0")


def test_picked_image_shows_a_preview_that_remove_deletes(composer):
    composer.set_input_files(
        "#composer-file", files=[{"name": "cat.png", "mimeType": "image/png", "buffer": png()}]
    )
    composer.locator(PREVIEW).wait_for()
    composer.wait_for_function(
        "() => document.querySelector('#composer-attachments img').naturalWidth > 0"
    )

    assert thumbnail_loaded(composer)
    assert composer.locator(PREVIEW).inner_text().strip().startswith("cat.png")
    assert Attachment.objects.count() == 1

    composer.get_by_role("button", name="Remove cat.png").click()

    assert composer.locator(PREVIEW).count() == 0
    for _ in range(50):  # the delete request runs in the background
        if not Attachment.objects.exists():
            break
        composer.wait_for_timeout(100)
    assert not Attachment.objects.exists()


def test_pasted_image_is_uploaded(composer):
    dispatch_with_file(composer, "#composer-text", ["paste"], png(), "image.png")

    composer.locator(PREVIEW).wait_for()

    assert Attachment.objects.count() == 1


def test_dropped_image_is_uploaded_and_drop_state_shows(composer):
    dispatch_with_file(composer, "#composer-text", ["dragover"], png(), "drop.png")
    assert "drop-active" in composer.locator("#composer").get_attribute("class")

    dispatch_with_file(composer, "#composer-text", ["drop"], png(), "drop.png")
    composer.locator(PREVIEW).wait_for()

    assert "drop-active" not in composer.locator("#composer").get_attribute("class")
    assert Attachment.objects.count() == 1


def test_file_that_is_not_an_image_shows_the_servers_reason(composer):
    composer.set_input_files(
        "#composer-file",
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"just words\n" * 10}],
    )

    alert = composer.locator("#composer-error p.error[role=alert]")
    alert.wait_for()

    assert alert.inner_text() == "This file is not a PNG, JPEG, WebP or GIF image."
    assert composer.locator("#composer-attachments > *").count() == 0


def test_model_without_images_keeps_the_button_for_documents_but_refuses_images(composer):
    composer.select_option("#composer-model", label="Sim Text")
    composer.wait_for_function("() => document.querySelector('#composer').dataset.images === '0'")

    assert composer.locator("[data-attach]").is_visible()
    dispatch_with_file(composer, "#composer-text", ["paste"], png(), "image.png")

    assert "does not accept images" in composer.locator("#composer-error").inner_text()
    assert not Attachment.objects.exists()


def test_send_carries_the_images_and_clears_the_previews(composer):
    composer.set_input_files(
        "#composer-file",
        files=[
            {"name": "a.png", "mimeType": "image/png", "buffer": png()},
            {"name": "b.png", "mimeType": "image/png", "buffer": png(colour=(200, 40, 40))},
        ],
    )
    composer.wait_for_function(
        "() => document.querySelectorAll('#composer-attachments [data-attachment-id]').length === 2"
    )
    ids = sorted(str(pk) for pk in Attachment.objects.values_list("pk", flat=True))

    composer.locator("#composer-text").fill("What is in these?")
    composer.locator("#composer-text").press("Enter")
    composer.wait_for_function(
        "() => !document.querySelector('#composer-attachments').children.length"
    )

    sent = composer.sent.sends()[-1]["attachments"]
    assert isinstance(sent, list)
    assert sorted(sent) == ids
