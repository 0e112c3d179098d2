"""Attached documents: told apart by content, read in a worker, limited, quota-checked,
owned and served as downloads.

Every file here is real: PDFs from tests/support/pdf.py (text on pages, a scan, an
encrypted one, broken ones), Word documents and zip bombs from tests/support/docx.py,
text in UTF-8, UTF-16 and GB18030. Uploads go through the worker process as in
production.
"""

# Chinese text keeps its own (full-width) punctuation.
# ruff: noqa: RUF001

from __future__ import annotations

import io
import time
import zipfile

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from PIL import Image

from conversations.attachments import documents, extraction, parsers, uploads
from conversations.attachments import images as attachments
from conversations.attachments.images import AttachmentError
from conversations.models import Attachment, Conversation, Message, Quota
from tests.support import attacks, pdf, workers
from tests.support.chat import open_socket, receive_until, send
from tests.support.docx import docx, zip_bomb_docx

NOT_TEXT = "This file is not text, though its name says it is."
GB18030_TEXT = (
    "季度会议纪要\n"
    "一、第三季度销售额比上季度增长了百分之十二，华东地区贡献最大。\n"
    "二、下季度计划在杭州和苏州各开设一家新门店。\n"
    "三、项目负责人：张伟；预算：五十万元。\n"
)
LOG_LINE = "2026-12-06 09:{minute:02d}:{second:02d} INFO worker-3 processed job {n} in 35 ms\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return zip_bomb_docx(32 * 1024 * 1024)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


def upload(data: bytes, name: str, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def stored(user, data: bytes, name: str) -> Attachment:
    return uploads.store_upload(user=user, uploaded_file=upload(data, name))


def refusal(user, data: bytes, name: str) -> str:
    with pytest.raises(AttachmentError) as refused:
        stored(user, data, name)
    return refused.value.user_message


def files_in(media) -> list[str]:
    return sorted(str(path.relative_to(media)) for path in media.rglob("*") if path.is_file())


def stored_bytes(attachment: Attachment) -> bytes:
    with attachment.file.open("rb") as saved:
        return saved.read()


def log_lines(count: int) -> str:
    return "".join(LOG_LINE.format(minute=n // 60 % 60, second=n % 60, n=n) for n in range(count))


# --- PDF ---------------------------------------------------------------------------------


def test_multi_page_pdf_counts_its_pages_and_keeps_each_pages_text_in_order(user):
    data = pdf.text_pdf("Chapter one\nThe start.", "Chapter two", "Chapter three\nThe end.")

    document = stored(user, data, "report.pdf")

    assert document.kind == Attachment.Kind.DOCUMENT
    assert (document.content_type, document.pages) == ("application/pdf", 3)
    assert document.extracted_text == (
        "Chapter one\nThe start.\n\nChapter two\n\nChapter three\nThe end."
    )
    assert document.extraction_note == ""
    assert stored_bytes(document) == data


def test_pdf_estimate_counts_its_text_and_an_allowance_per_page(user):
    document = stored(user, pdf.text_pdf("x" * 400, "y" * 400), "two.pdf")

    assert document.token_estimate == 200 + 1 + 2 * documents.PAGE_TOKENS


def test_scanned_pdf_is_accepted_with_the_no_text_note(user):
    document = stored(user, pdf.scanned_pdf(pages=2), "scan.pdf")

    assert (document.pages, document.extracted_text) == (2, "")
    assert document.extraction_note == documents.NO_TEXT == "no_text"


def test_encrypted_pdf_is_refused_saying_it_needs_a_password(user):
    message = refusal(user, pdf.encrypted_pdf("Salaries 2026"), "salaries.pdf")

    assert message == (
        "This PDF is protected by a password. Remove the password, then attach it again."
    )
    assert not Attachment.objects.exists()


def test_pdf_that_opens_without_a_password_is_read(user):
    data = pdf.encrypted_pdf("Anyone may read this", user_password="")

    assert stored(user, data, "restricted.pdf").extracted_text == "Anyone may read this"


@pytest.mark.parametrize("data", [pdf.broken_pdf(), pdf.truncated_pdf()], ids=["broken", "cut"])
def test_malformed_pdf_is_refused(user, data):
    assert refusal(user, data, "broken.pdf") == "This PDF could not be read; it may be damaged."


@override_settings(CHAT_MAX_PDF_PAGES=2)
def test_pdf_over_the_page_limit_is_refused_naming_both(user):
    message = refusal(user, pdf.text_pdf("one", "two", "three"), "long.pdf")

    assert message == "This PDF has 3 pages; the limit is 2."


def test_pdf_is_told_by_its_content_not_its_name(user):
    document = stored(user, pdf.text_pdf("I am a PDF"), "notes.txt")

    assert (document.content_type, document.extracted_text) == ("application/pdf", "I am a PDF")


def test_file_named_pdf_that_is_not_one_is_refused(user):
    message = refusal(user, b"plain words, no PDF at all\n", "fake.pdf")

    assert message == "This PDF could not be read; it may be damaged."


# --- Word --------------------------------------------------------------------------------


def test_docx_body_text_is_read_with_paragraphs_and_tabs(user):
    document = stored(user, docx("Minutes", "Owner:\tZhang Wei", "预算：五十万元"), "会议.docx")

    assert document.content_type == documents.DOCX_TYPE
    assert document.extracted_text == "Minutes\nOwner:\tZhang Wei\n预算：五十万元\n"
    assert document.original_name == "会议.docx"


def test_zip_bomb_docx_is_refused_from_its_directory_without_unpacking(bomb, monkeypatch):
    opened = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *args, **kw: opened.append(args))

    with pytest.raises(parsers.Unreadable) as refused:
        parsers.read_docx(bomb, max_chars=1_000_000)

    assert refused.value.code == parsers.ZIP_BOMB
    assert opened == []


def test_zip_bomb_docx_upload_is_refused_fast_with_a_message(user, bomb, media):
    assert len(bomb) < 200_000
    started = time.monotonic()

    message = refusal(user, bomb, "bomb.docx")

    elapsed = time.monotonic() - started
    assert elapsed < 3
    assert message == (
        "This Word document would unpack to far more than its size, so it was not opened."
    )
    assert files_in(media) == []
    attacks.record(
        f"a {len(bomb) // 1024} KB .docx whose text part unpacks to 32 MB (a zip bomb)",
        before="documents could not be attached",
        observed=f"refused from the zip's directory in {elapsed:.2f} s, nothing unpacked",
    )


def test_docx_declaring_entities_is_refused_unexpanded(user):
    laughs = '<!DOCTYPE d [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'

    message = refusal(user, docx("&b;", prologue=laughs).replace(b"&amp;b;", b"&b;"), "l.docx")

    assert message == "This Word document could not be read; it may be damaged."


def test_zip_that_is_not_a_word_document_is_refused_as_an_unknown_kind(user):
    archive = zip_bomb_docx(0).replace(b"word/document.xml", b"xl/workbook.xml__")

    message = refusal(user, archive, "sheet.docx")

    assert message.startswith("Files of this kind cannot be attached.")


# --- Text --------------------------------------------------------------------------------


def test_binary_file_renamed_txt_is_refused(user):
    binary = bytes(range(256)) * 40  # an executable's mix of bytes, NULs included

    assert refusal(user, binary, "setup.txt").startswith(NOT_TEXT)
    assert not Attachment.objects.exists()


def test_binary_without_nul_bytes_renamed_txt_is_refused(user):
    binary = bytes(b for b in range(1, 256) if b not in b"\t\n\r\x0c") * 40

    assert refusal(user, binary, "photo.log").startswith(NOT_TEXT)


def test_gb18030_chinese_text_is_decoded_and_stored_as_utf8(user):
    document = stored(user, GB18030_TEXT.encode("gb18030"), "纪要.txt")

    assert document.extracted_text == GB18030_TEXT
    assert stored_bytes(document) == GB18030_TEXT.encode("utf-8")
    assert document.content_type == "text/plain"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_text_with_a_byte_order_mark_is_decoded_by_it(user, encoding):
    document = stored(user, "naïve café, 北京\n".encode(encoding), "notes.md")

    assert document.extracted_text == "naïve café, 北京\n"
    assert document.content_type == "text/markdown"


def test_ten_thousand_line_log_is_accepted_with_a_large_estimate(user):
    text = log_lines(10_000)

    document = stored(user, text.encode(), "worker.log")

    assert document.extracted_text == text
    assert document.token_estimate > 100_000
    assert document.extraction_note == ""


@override_settings(CHAT_MAX_EXTRACTED_CHARS=1_000)
def test_text_past_the_character_cap_is_cut_and_noted(user):
    document = stored(user, log_lines(100).encode(), "worker.log")

    assert document.extracted_text == log_lines(100)[:1_000]
    assert document.extraction_note == documents.TRUNCATED == "truncated"


@pytest.mark.parametrize("name", ["main.py", "Makefile", "query.sql", "page.html", "data.csv"])
def test_source_and_data_files_are_accepted_by_name(user, name):
    assert stored(user, b"x = 1\n", name).extracted_text == "x = 1\n"


@pytest.mark.parametrize("name", ["movie.mp4", "archive.7z", "notes", "legacy.doc"])
def test_files_of_other_kinds_are_refused(user, name):
    assert refusal(user, b"some bytes\n", name).startswith("Files of this kind cannot be attached")


def test_text_named_like_an_image_goes_to_the_image_checks(user):
    message = refusal(user, b"just words\n", "notes.png")

    assert message == "This file is not a PNG, JPEG, WebP or GIF image."


def test_clean_text_has_no_nul_or_lone_surrogates_postgres_would_refuse():
    assert parsers.clean("a\x00b\x07c\ud800d\te\n") == "abc?d\te\n"


# --- Limits ------------------------------------------------------------------------------


@override_settings(CHAT_MAX_FILE_BYTES=1_000)
def test_file_over_the_size_limit_is_refused_naming_both(user):
    message = refusal(user, b"a" * 2_048, "big.txt")

    assert message == "This file is 2 KB; the limit is 1000 bytes."


def test_empty_file_is_refused(user):
    assert refusal(user, b"", "empty.txt") == "This file is empty."


def test_spinning_parser_is_stopped_and_the_file_refused(user, monkeypatch, settings):
    settings.CHAT_EXTRACT_SECONDS = 1
    monkeypatch.setattr(parsers, "extract", workers.spin)  # the worker really spins
    started = time.monotonic()

    message = refusal(user, pdf.text_pdf("hello"), "slow.pdf")

    elapsed = time.monotonic() - started
    assert message.startswith("Reading this file took too long")
    assert elapsed < 5
    assert not Attachment.objects.exists()
    attacks.record(
        "a file that makes its parser loop for ever (CHAT_EXTRACT_SECONDS=1)",
        before="documents could not be attached",
        observed=f"worker process killed, file refused after {elapsed:.1f} s; no thread held",
    )


@override_settings(CHAT_MAX_IMAGES_PER_MESSAGE=1, CHAT_MAX_FILES_PER_MESSAGE=2)
def test_claim_counts_images_and_documents_against_their_own_limits(user):
    image = attachments.store_upload(user=user, uploaded_file=upload(png_bytes(), "a.png"))
    first, second = stored(user, b"one\n", "1.txt"), stored(user, b"two\n", "2.txt")

    claimed = attachments.claim(user=user, ids=[image.pk, first.pk, second.pk])

    assert claimed == [image, first, second]


@override_settings(CHAT_MAX_FILES_PER_MESSAGE=2)
def test_claim_refuses_more_documents_than_a_message_carries(user):
    ids = [stored(user, b"text\n", f"{n}.txt").pk for n in range(3)]

    with pytest.raises(AttachmentError, match="at most 2 files"):
        attachments.claim(user=user, ids=ids)


# --- Quota -------------------------------------------------------------------------------


def test_document_needing_more_tokens_than_are_left_is_refused_and_not_stored(user, media):
    Quota.objects.create(user=user, tokens_per_day=1_000)

    text = log_lines(200)

    message = refusal(user, text.encode(), "worker.log")

    tokens = documents.token_estimate(text, None)
    assert tokens > 1_000
    assert (
        message
        == f"This file would take about {tokens:,} tokens, more than the 1,000 you have left."
    )
    assert not Attachment.objects.exists()
    assert files_in(media) == []


def test_document_within_what_is_left_is_stored(user):
    Quota.objects.create(user=user, tokens_per_day=1_000)

    assert stored(user, b"short note\n", "note.txt").token_estimate <= 1_000


def test_with_no_tokens_left_a_document_is_refused_before_it_is_read(user, monkeypatch):
    Quota.objects.create(user=user, tokens_per_day=0)
    monkeypatch.setattr(extraction, "run", lambda *a, **kw: pytest.fail("the file was read"))

    message = refusal(user, b"short note\n", "note.txt")

    assert message == "You have no tokens left, so files cannot be attached now."


# --- Upload over HTTP ---------------------------------------------------------------------


def test_upload_answers_a_chip_with_name_size_pages_and_tokens(client, user):
    client.force_login(user)

    response = client.post(
        "/attachments/", {"file": upload(pdf.text_pdf("a" * 40, "b"), "年报.pdf")}
    )

    document = Attachment.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-kind="document"' in html
    assert "年报.pdf" in html
    assert "2 pages" in html
    assert f"≈ {document.token_estimate:,} tokens" in html
    assert "<img" not in html
    assert f'<input type="hidden" name="attachments" value="{document.pk}">' in html


def test_scanned_pdf_chip_warns_that_no_text_could_be_extracted(client, user):
    client.force_login(user)

    response = client.post("/attachments/", {"file": upload(pdf.scanned_pdf(), "scan.pdf")})

    assert "No text could be extracted (a scanned PDF?)" in response.content.decode()


def test_refused_document_answers_400_with_the_reason(client, user):
    client.force_login(user)

    response = client.post("/attachments/", {"file": upload(pdf.broken_pdf(), "x.pdf")})

    assert response.status_code == 400
    assert response.json() == {"error": "This PDF could not be read; it may be damaged."}


@override_settings(CHAT_MAX_FILE_BYTES=10_000, CHAT_MAX_IMAGE_BYTES=10_000)
def test_request_longer_than_any_file_is_refused_413_before_it_is_parsed(client, user, monkeypatch):
    from django.http.multipartparser import MultiPartParser

    monkeypatch.setattr(MultiPartParser, "parse", lambda self: pytest.fail("parsed"))
    client.force_login(user)
    too_long = 10_000 + uploads.REQUEST_OVERHEAD + 1

    response = client.post("/attachments/", {"file": upload(b"a" * too_long, "big.txt")})

    assert response.status_code == 413
    assert response.json() == {"error": "This file is too large to upload."}


def test_document_upload_still_needs_the_csrf_token(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post("/attachments/", {"file": upload(b"hello\n", "a.txt")})

    assert response.status_code == 403
    assert not Attachment.objects.exists()


def test_the_composer_is_given_the_limits_it_checks_before_uploading(client, user, catalogue):
    client.force_login(user)

    html = client.get("/").content.decode()

    assert 'data-max-file-bytes="20971520"' in html
    assert 'data-max-files="5"' in html
    assert "application/pdf,.pdf,.docx," in html


# --- Serving and ownership ---------------------------------------------------------------


def test_owner_downloads_a_document_with_safe_headers(client, user):
    document = stored(user, b"# Plan\n", "计划 v2.md")
    client.force_login(user)

    response = client.get(f"/attachments/{document.pk}/")

    assert b"".join(response.streaming_content) == b"# Plan\n"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"v2.md\"; filename*=UTF-8''%E8%AE%A1%E5%88%92%20v2.md"
    )


@pytest.mark.parametrize(
    ("name", "data", "served_as"),
    [
        ("page.html", b"<script>alert(1)</script>\n", "text/plain; charset=utf-8"),
        ("report.pdf", pdf.text_pdf("r"), "application/pdf"),
        ("data.json", b"{}\n", "application/octet-stream"),
    ],
)
def test_documents_are_never_served_as_pages(client, user, name, data, served_as):
    document = stored(user, data, name)
    client.force_login(user)

    response = client.get(f"/attachments/{document.pk}/")

    assert response["Content-Type"] == served_as
    assert response["Content-Disposition"].startswith("attachment;")


def test_download_name_without_ascii_falls_back_to_file():
    assert serving_disposition("报告.pdf") == (
        "attachment; filename=\"file.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf"
    )


def test_download_name_cannot_break_out_of_the_header():
    header = serving_disposition('evil"; filename="x.html\r\n.txt')

    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="evil_ filename_x.html.txt";')


def serving_disposition(name: str) -> str:
    from conversations.attachments.serving import download_disposition

    return download_disposition(name)


def test_a_document_has_no_thumbnail(client, user):
    document = stored(user, b"hello\n", "a.txt")
    client.force_login(user)

    assert client.get(f"/attachments/{document.pk}/thumb/").status_code == 404


@pytest.mark.parametrize("request_", ["download", "delete"])
def test_another_users_document_is_404(client, user, other_user, request_):
    document = stored(user, pdf.text_pdf("secret plan"), "plan.pdf")
    client.force_login(other_user)

    if request_ == "download":
        response = client.get(f"/attachments/{document.pk}/")
    else:
        response = client.post(f"/attachments/{document.pk}/delete/")

    assert response.status_code == 404
    assert b"secret plan" not in response.content
    assert Attachment.objects.filter(pk=document.pk).exists()


def test_another_users_document_cannot_be_claimed(user, other_user):
    theirs = stored(other_user, b"their notes\n", "notes.txt")

    with pytest.raises(AttachmentError, match="no longer available"):
        attachments.claim(user=user, ids=[theirs.pk])


def test_sent_document_is_downloadable_by_the_conversation_owner_only(client, user, other_user):
    document = stored(user, b"minutes\n", "minutes.txt")
    conversation = Conversation.objects.create(owner=user)
    document.message = Message.objects.create(conversation=conversation, role="user", text="x")
    document.save(update_fields=["message"])

    client.force_login(user)
    assert client.get(f"/attachments/{document.pk}/").status_code == 200
    client.force_login(other_user)
    assert client.get(f"/attachments/{document.pk}/").status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_another_users_document_is_refused_over_the_websocket(gateway, user, other_user):
    theirs = await sync_to_async(stored)(other_user, b"their notes\n", "notes.txt")
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Summarise", attachments=[theirs.pk])
    frames = await receive_until(socket, lambda frame: "no longer available" in frame)

    assert "An attached file is no longer available" in frames[-1]
    document = await sync_to_async(Attachment.objects.get)(pk=theirs.pk)
    assert document.message_id is None
    assert not await sync_to_async(Message.objects.exists)()
    await socket.disconnect()
