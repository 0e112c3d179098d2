"""Documents stay with their question: its bubble names them, exports carry them, shared
transcripts name them and link them only where the owner allowed downloads, and
"continue in a new chat" copies them only then."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from conversations.attachments.images import save_with_file
from conversations.history import exports
from conversations.models import Attachment, Conversation, Message
from conversations.sharing import continuing
from conversations.sharing import links as sharing
from tests.support.messages import say

REPORT = "季度报告 Q3.pdf"
TEXT = "Revenue grew 12% in the third quarter."


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def conversation(user) -> Conversation:
    conversation = Conversation.objects.create(owner=user, title="Quarterly")
    question, _answer = say(conversation, "Summarise the report", "Revenue grew.")
    attach_document(question)
    return conversation


def attach_document(message: Message) -> Attachment:
    document = Attachment(
        owner=message.conversation.owner,
        message=message,
        kind=Attachment.Kind.DOCUMENT,
        content_type="application/pdf",
        original_name=REPORT,
        size=2048,
        pages=3,
        extracted_text=TEXT,
        token_estimate=12,
    )
    return save_with_file(document, ContentFile(b"%PDF-1.4 pretend"))


def document_of(conversation) -> Attachment:
    return Attachment.objects.get(message__conversation=conversation, kind="document")


@pytest.mark.django_db
def test_the_question_names_its_document_with_size_and_pages(client, user, conversation):
    client.force_login(user)

    page = client.get(reverse("conversation", args=[conversation.pk])).text

    document = document_of(conversation)
    assert REPORT in page and "2.0\xa0KB · 3 pages" in page
    assert f'href="{reverse("attachment", args=[document.pk])}" download' in page
    assert f'src="{reverse("attachment_thumbnail", args=[document.pk])}"' not in page


@pytest.mark.django_db
def test_the_zip_export_carries_the_document_under_its_name(client, user, conversation):
    client.force_login(user)

    response = client.get(reverse("export_zip", args=[conversation.pk]))

    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    document = document_of(conversation)
    name = f"files/{document.pk}/{REPORT}"
    assert archive.read(name) == b"%PDF-1.4 pretend"
    record = json.loads(archive.read("conversation.json"))
    (entry,) = [a for m in record["messages"] for a in m["attachments"]]
    assert (entry["kind"], entry["file"], entry["pages"]) == ("document", name, 3)
    assert f"[{REPORT}](<{name}>)" in archive.read("conversation.md").decode()


def test_a_file_name_never_leaves_its_folder_in_a_zip():
    assert exports.safe_file_name("../../etc/passwd") == "passwd"
    assert exports.safe_file_name("..\\..\\boot.ini") == "boot.ini"
    assert exports.safe_file_name("..") == "file"


@pytest.mark.django_db
@pytest.mark.parametrize("allowed", [False, True])
def test_a_share_link_names_documents_and_links_them_only_if_allowed(
    client, other_user, conversation, allowed
):
    link = sharing.create_link(
        conversation=conversation, visibility="team", allow_downloads=allowed
    )
    document = document_of(conversation)
    download = reverse("shared_image", args=[link.token, document.pk])
    client.force_login(other_user)

    page = client.get(reverse("shared_transcript", args=[link.token])).text
    response = client.get(download)

    assert REPORT in page
    assert (download in page) is allowed
    assert response.status_code == (200 if allowed else 404)
    if allowed:
        assert b"".join(response.streaming_content) == b"%PDF-1.4 pretend"
        assert response["Content-Disposition"].startswith("attachment")


@pytest.mark.django_db
def test_the_share_dialog_sets_whether_files_can_be_downloaded(client, user, conversation):
    client.force_login(user)

    client.post(
        reverse("share_conversation", args=[conversation.pk]),
        {"visibility": "team", "expires": "", "allow_downloads": "on"},
    )

    assert conversation.share_links.get().allow_downloads is True


@pytest.mark.django_db
@pytest.mark.parametrize("allowed", [False, True])
def test_continuing_copies_documents_only_where_downloads_were_allowed(
    other_user, conversation, allowed
):
    link = sharing.create_link(
        conversation=conversation, visibility="team", allow_downloads=allowed
    )

    copy = continuing.continue_in_new_chat(link=link, user=other_user)

    copied = Attachment.objects.filter(message__conversation=copy)
    if not allowed:
        assert not copied.exists()
        return
    (document,) = copied
    assert (document.owner, document.original_name, document.pages, document.extracted_text) == (
        other_user,
        REPORT,
        3,
        TEXT,
    )
    assert document.file.name != document_of(conversation).file.name
