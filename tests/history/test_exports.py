"""Exports: JSON that reads back into the same tree, Markdown, zips with images, ownership."""

from __future__ import annotations

import datetime
import io
import json
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from conversations.attachments import images as attachments
from conversations.history import exports
from conversations.models import Conversation, Message, ModelChoice, UsageRecord

pytestmark = pytest.mark.django_db

MESSAGE_FIELDS = [
    "id",
    "parent_id",
    "role",
    "text",
    "status",
    "error",
    "model_name",
    "reasoning_effort",
    "reasoning_summary",
    "created_at",
    "updated_at",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "citations",
    "tool_calls",
    "web_searches",
]
CITED = "See the guide ([example.org](https://example.org/guide)) for more."
TOOL_CALL = {
    "call_id": "call_1",
    "name": "calculator",
    "arguments": '{"expression": "6*7"}',
    "output": '{"result": 42}',
    "ok": True,
    "duration_ms": 1.5,
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def client(client, user):
    client.force_login(user)
    return client


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "teal").save(buffer, "PNG")
    return buffer.getvalue()


def attach(user, message: Message, name: str = "photo.png"):
    upload = SimpleUploadedFile(name, png_bytes(), content_type="image/png")
    image = attachments.store_upload(user=user, uploaded_file=upload)
    image.message = message
    image.save(update_fields=["message"])
    return image


@pytest.fixture
def chat(user) -> Conversation:
    """A conversation with an edited first message: two branches, the newer on screen."""
    model = ModelChoice.objects.create(upstream_id="sim-chat", label="Sim Chat")
    chat = Conversation.objects.create(
        owner=user, title="北京 trip plans", model=model, instructions="Answer briefly."
    )
    start = timezone.now() - datetime.timedelta(minutes=10)

    def add(text, role, parent=None, minute=0, **fields):
        return Message.objects.create(
            conversation=chat,
            parent=parent,
            role=role,
            text=text,
            created_at=start + datetime.timedelta(minutes=minute),
            **fields,
        )

    old = add("first draft question", "user")
    add("old answer", "assistant", old, 1, model_name="sim-chat")
    question = add("What should I pack?", "user", minute=2)
    attach(user, question)
    answer = add(
        CITED,
        "assistant",
        question,
        3,
        model_name="sim-chat",
        reasoning_summary="**Packing**\nThink about the weather.",
        citations=[
            {
                "url": "https://example.org/guide",
                "title": "Packing guide",
                "domain": "example.org",
                "start_index": CITED.index("[example"),
                "end_index": CITED.index(")) ") + 1,
            }
        ],
        tool_calls=[TOOL_CALL],
        web_searches=[{"query": "beijing weather", "status": "completed"}],
        input_tokens=120,
        output_tokens=40,
        reasoning_tokens=8,
    )
    UsageRecord.objects.create(
        user=user,
        conversation=chat,
        message=answer,
        model_name="sim-chat",
        input_tokens=120,
        output_tokens=40,
        total_tokens=160,
        cost=Decimal("0.000560"),
    )
    return chat


def zip_of(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


# --- JSON ----------------------------------------------------------------------------


def test_export_json_reads_back_into_the_same_messages(client, chat):
    response = client.get(reverse("export_json", args=[chat.pk]))

    loaded = exports.conversation_from_export(response.content)

    stored = list(chat.messages.order_by("created_at", "pk").values(*MESSAGE_FIELDS))
    assert [{k: m[k] for k in MESSAGE_FIELDS} for m in loaded["messages"]] == stored


def test_export_json_keeps_the_tree(client, chat):
    response = client.get(reverse("export_json", args=[chat.pk]))

    messages = exports.conversation_from_export(response.content)["messages"]

    roots = [m["text"] for m in messages if m["parent_id"] is None]
    assert roots == ["first draft question", "What should I pack?"]


def test_export_json_has_conversation_fields_and_usage(client, chat):
    document = json.loads(client.get(reverse("export_json", args=[chat.pk])).content)

    assert (document["format"], document["version"]) == ("chatweb.conversation", 1)
    assert document["conversation"]["model"] == "sim-chat"
    assert document["usage"][0]["cost"] == "0.000560"


def test_export_json_usage_reads_back(client, chat):
    response = client.get(reverse("export_json", args=[chat.pk]))

    (usage,) = exports.conversation_from_export(response.content)["usage"]

    record = UsageRecord.objects.get()
    assert (usage["message_id"], usage["cost"], usage["created_at"]) == (
        record.message_id,
        record.cost,
        record.created_at,
    )


def test_export_json_lists_attachments_by_zip_path(client, chat):
    image = chat.messages.get(text="What should I pack?").attachments.get()

    document = json.loads(client.get(reverse("export_json", args=[chat.pk])).content)

    listed = [a for m in document["messages"] for a in m["attachments"]]
    assert listed[0]["file"] == f"images/{image.pk}.png"
    assert listed[0]["name"] == "photo.png"


def test_conversation_from_export_rejects_another_format():
    with pytest.raises(exports.ExportError):
        exports.conversation_from_export({"format": "something.else", "version": 1})


def test_conversation_from_export_rejects_a_parent_after_its_child(client, chat):
    document = json.loads(client.get(reverse("export_json", args=[chat.pk])).content)
    document["messages"].reverse()

    with pytest.raises(exports.ExportError):
        exports.conversation_from_export(document)


# --- Markdown ------------------------------------------------------------------------


@pytest.fixture
def markdown(client, chat) -> str:
    return client.get(reverse("export_markdown", args=[chat.pk])).content.decode()


def test_export_markdown_has_title_and_visible_branch(markdown):
    assert markdown.startswith("# 北京 trip plans\n")
    assert "What should I pack?" in markdown
    assert "old answer" not in markdown


def test_export_markdown_shows_roles_models_and_times(markdown, chat):
    answer_time = timezone.localtime(chat.messages.get(role="assistant", text=CITED).created_at)

    assert "## You · " in markdown
    assert f"## Assistant · sim-chat · {answer_time:%Y-%m-%d %H:%M}" in markdown


def test_export_markdown_quotes_the_reasoning_summary(markdown):
    assert "> **Reasoning summary**\n>\n> **Packing**\n> Think about the weather." in markdown


def test_export_markdown_lists_citations_as_sources(markdown):
    assert "See the guide [[1]](https://example.org/guide) for more." in markdown
    assert "**Sources**\n\n1. [Packing guide](https://example.org/guide) (example.org)" in markdown


def test_export_markdown_shows_tool_calls_as_fenced_json(markdown):
    block = markdown.split("```json\n", 1)[1].split("\n```", 1)[0]

    assert json.loads(block)["output"] == {"result": 42}


def test_export_markdown_names_images(markdown, chat):
    image = chat.messages.get(text="What should I pack?").attachments.get()

    assert f"![photo.png](images/{image.pk}.png)" in markdown


def test_export_markdown_fence_outlasts_backticks_in_tool_output(user):
    chat = Conversation.objects.create(owner=user, title="Fences")
    call = {**TOOL_CALL, "output": "```\nnot the end\n```"}
    Message.objects.create(conversation=chat, role="assistant", text="ok", tool_calls=[call])

    assert "````json\n" in exports.conversation_markdown(chat)


def test_export_markdown_download_name_is_an_ascii_slug_with_utf8_name(client, chat):
    response = client.get(reverse("export_markdown", args=[chat.pk]))

    assert response["Content-Disposition"] == (
        f"attachment; filename=\"trip-plans-{chat.pk}.md\"; filename*=UTF-8''"
        f"%E5%8C%97%E4%BA%AC-trip-plans-{chat.pk}.md"
    )
    assert response["Content-Type"] == "text/markdown; charset=utf-8"


def test_export_name_of_untitled_conversation():
    assert (
        exports.content_disposition("", "-3.json") == 'attachment; filename="conversation-3.json"'
    )


# --- Zips ----------------------------------------------------------------------------


def test_export_zip_holds_json_markdown_and_images(client, chat):
    image = chat.messages.get(text="What should I pack?").attachments.get()

    archive = zip_of(client.get(reverse("export_zip", args=[chat.pk])))

    names = set(archive.namelist())
    assert names == {"conversation.json", "conversation.md", f"images/{image.pk}.png"}
    assert archive.read(f"images/{image.pk}.png") == image.file.open("rb").read()


def test_export_zip_lists_a_missing_image_without_a_file(client, chat):
    image = chat.messages.get(text="What should I pack?").attachments.get()
    image.file.storage.delete(image.file.name)

    archive = zip_of(client.get(reverse("export_zip", args=[chat.pk])))

    loaded = exports.conversation_from_export(archive.read("conversation.json"))
    assert [a["file"] for m in loaded["messages"] for a in m["attachments"]] == [None]


def test_export_zip_refuses_past_the_size_limit(client, chat, monkeypatch):
    monkeypatch.setattr(exports, "MAX_IMAGE_BYTES", 10)

    response = client.get(reverse("export_zip", args=[chat.pk]))

    assert response.status_code == 413


def test_account_export_has_index_and_every_conversation(client, user, other_user, chat):
    empty = Conversation.objects.create(owner=user, title="Empty", archived=True)
    Conversation.objects.create(owner=other_user, title="Not mine")

    archive = zip_of(client.get(reverse("export_account")))

    index = json.loads(archive.read("index.json"))
    assert [entry["id"] for entry in index["conversations"]] == [empty.pk, chat.pk]
    assert {f"conversations/{chat.pk}.json", f"conversations/{empty.pk}.json"} <= set(
        archive.namelist()
    )


def test_account_export_includes_images(client, chat):
    image = chat.messages.get(text="What should I pack?").attachments.get()

    archive = zip_of(client.get(reverse("export_account")))

    assert archive.read(f"images/{image.pk}.png") == image.file.open("rb").read()


def test_usage_page_links_to_the_account_export(client):
    response = client.get(reverse("usage"))

    assert reverse("export_account") in response.text


# --- Access --------------------------------------------------------------------------

CONVERSATION_EXPORTS = ["export_markdown", "export_json", "export_zip"]


@pytest.mark.parametrize("name", CONVERSATION_EXPORTS)
def test_export_of_someone_elses_conversation_is_404(client, other_user, name):
    theirs = Conversation.objects.create(owner=other_user, title="Theirs")

    assert client.get(reverse(name, args=[theirs.pk])).status_code == 404


@pytest.mark.parametrize("name", CONVERSATION_EXPORTS)
def test_export_anonymous_is_sent_to_login(client, chat, name):
    client.logout()

    response = client.get(reverse(name, args=[chat.pk]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_account_export_anonymous_is_sent_to_login(client):
    client.logout()

    assert client.get(reverse("export_account")).status_code == 302
