"""Composer documents in Chromium: a PDF by the button, a .txt by paste, a .md by drop,
each chip with its name, pages and tokens; an oversized file refused before upload;
the message sent with all three."""

from __future__ import annotations

import base64

import pytest

from conversations.models import Attachment
from tests.support.browser import (
    RECORDER_JS,
    SentFrames,
    add_model,
    latest_answer_id,
    question_text,
    wait_for_socket,
    wait_for_status,
)
from tests.support.pdf import scanned_pdf, text_pdf

CHIPS = "#composer-attachments .document-preview"
QUESTION = "What do these files say?"


@pytest.fixture
def composer(page, make_user, login):
    """A signed-in chat page on a model that takes no images; uploads removed after."""
    add_model("sim-chat", "Sim Chat", default=True)
    make_user("ming")
    page.add_init_script(RECORDER_JS)
    page.sent = SentFrames().attach(page)
    login(page, "ming", "pw-for-tests-123")
    wait_for_socket(page)
    yield page
    # The server and this process share DATA_DIR; deleting the rows removes the files.
    for attachment in Attachment.objects.all():
        attachment.delete()


def dispatch_with_file(page, events: list[str], data: bytes, name: str, type_: str) -> None:
    """Fire `events` at the composer's text box carrying one file, as a paste or drop."""
    page.evaluate(
        """([events, b64, name, type]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            const target = document.querySelector("#composer-text");
            for (const kind of events) {
                const event = kind === "paste"
                    ? new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true })
                    : new DragEvent(kind, {
                        dataTransfer: transfer, bubbles: true, cancelable: true,
                    });
                target.dispatchEvent(event);
            }
        }""",
        [events, base64.b64encode(data).decode(), name, type_],
    )


def chip(page, name: str):
    return page.locator(CHIPS).filter(has_text=name)


def test_documents_attached_by_button_paste_and_drop_are_sent(composer, artifacts_dir):
    composer.set_input_files(
        "#composer-file",
        files=[
            {
                "name": "quarterly-report.pdf",
                "mimeType": "application/pdf",
                "buffer": text_pdf("Sales rose 12%.", "Costs fell.", "Outlook: steady."),
            }
        ],
    )
    chip(composer, "quarterly-report.pdf").wait_for()
    dispatch_with_file(composer, ["paste"], b"Meeting at 10.\n" * 40, "notes.txt", "text/plain")
    chip(composer, "notes.txt").wait_for()
    dispatch_with_file(composer, ["dragover"], b"# Plan\n", "plan.md", "text/markdown")
    assert "drop-active" in composer.locator("#composer").get_attribute("class")
    dispatch_with_file(composer, ["drop"], b"# Plan\n\n- ship it\n", "plan.md", "text/markdown")
    chip(composer, "plan.md").wait_for()

    assert composer.locator(CHIPS).count() == 3
    pdf_chip = chip(composer, "quarterly-report.pdf").inner_text()
    assert "3 pages" in pdf_chip and "tokens" in pdf_chip
    assert "≈ 150 tokens" in chip(composer, "notes.txt").inner_text()
    assert "tokens" in chip(composer, "plan.md").inner_text()
    composer.locator("#composer").screenshot(path=str(artifacts_dir / "documents-composer.png"))
    ids = sorted(str(pk) for pk in Attachment.objects.values_list("pk", flat=True))

    composer.locator("#composer-text").fill(QUESTION)
    composer.locator("#composer-text").press("Enter")
    composer.wait_for_function(
        "() => !document.querySelector('#composer-attachments').children.length"
    )
    answer = latest_answer_id(composer)
    wait_for_status(composer, answer, "complete")

    assert sorted(composer.sent.sends()[-1]["attachments"]) == ids
    assert question_text(composer) == QUESTION
    assert Attachment.objects.filter(message__isnull=False).count() == 3


def test_scanned_pdf_chip_warns_that_it_has_no_text(composer, artifacts_dir):
    composer.set_input_files(
        "#composer-file",
        files=[{"name": "scan.pdf", "mimeType": "application/pdf", "buffer": scanned_pdf(2)}],
    )

    warning = chip(composer, "scan.pdf").locator(".attachment-warning")
    warning.wait_for()
    assert warning.inner_text() == "No text could be extracted (a scanned PDF?)"
    composer.locator("#composer").screenshot(path=str(artifacts_dir / "documents-scanned.png"))


def test_removing_a_document_chip_deletes_the_upload(composer):
    dispatch_with_file(composer, ["paste"], b"draft\n", "draft.txt", "text/plain")
    chip(composer, "draft.txt").wait_for()

    composer.get_by_role("button", name="Remove draft.txt").click()

    assert composer.locator(CHIPS).count() == 0
    for _ in range(50):  # the delete request runs in the background
        if not Attachment.objects.exists():
            break
        composer.wait_for_timeout(100)
    assert not Attachment.objects.exists()


def test_oversized_document_is_refused_before_it_is_uploaded(composer):
    uploads: list[str] = []
    composer.on("request", lambda request: uploads.append(request.url))
    composer.evaluate("document.querySelector('#composer-file').dataset.maxFileBytes = 1048576")

    composer.set_input_files(
        "#composer-file",
        files=[{"name": "big.log", "mimeType": "text/plain", "buffer": b"x" * 1_600_000}],
    )

    alert = composer.locator("#composer-error p.error[role=alert]")
    alert.wait_for()
    assert alert.inner_text() == "“big.log” is larger than 1 MB."
    assert not [url for url in uploads if url.endswith("/attachments/")]
    assert not Attachment.objects.exists()


def test_server_refusal_of_a_document_shows_its_reason(composer):
    binary = bytes(range(256)) * 8

    composer.set_input_files(
        "#composer-file",
        files=[{"name": "setup.txt", "mimeType": "text/plain", "buffer": binary}],
    )

    alert = composer.locator("#composer-error p.error[role=alert]")
    alert.wait_for()
    assert alert.inner_text().startswith("This file is not text")
    assert composer.locator("#composer-attachments > *").count() == 0
