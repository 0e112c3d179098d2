"""Exports: JSON holding the whole tree as stored, Markdown, zips with images, ownership."""

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

# Each message's JSON key and the model field it holds; timestamps are ISO 8601.
MESSAGE_KEYS = {
    "id": "id",
    "parent": "parent_id",
    "role": "role",
    "text": "text",
    "status": "status",
    "error": "error",
    "model": "model_name",
    "reasoning_effort": "reasoning_effort",
    "reasoning_summary": "reasoning_summary",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "citations": "citations",
    "tool_calls": "tool_calls",
    "web_searches": "web_searches",
}
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


def exported(client, chat) -> dict:
    return json.loads(client.get(reverse("export_json", args=[chat.pk])).content)


def stored_as_exported(message: Message) -> dict:
    """Return `message` as the export should list it: ISO timestamps, tokens under usage."""
    entry = {key: getattr(message, field) for key, field in MESSAGE_KEYS.items()}
    entry["created_at"] = message.created_at.isoformat()
    entry["updated_at"] = message.updated_at.isoformat()
    entry["usage"] = {
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "reasoning_tokens": message.reasoning_tokens,
    }
    return entry


def test_export_json_holds_every_message_as_stored(client, chat):
    document = exported(client, chat)

    listed = [{k: m[k] for k in [*MESSAGE_KEYS, "usage"]} for m in document["messages"]]
    stored = chat.messages.order_by("created_at", "pk")
    assert listed == [stored_as_exported(message) for message in stored]


def test_export_json_timestamps_keep_full_precision(client, chat):
    answer = chat.messages.get(role="assistant", text=CITED)

    (entry,) = [m for m in exported(client, chat)["messages"] if m["id"] == answer.pk]

    assert datetime.datetime.fromisoformat(entry["created_at"]) == answer.created_at


def test_export_json_keeps_the_tree(client, chat):
    messages = exported(client, chat)["messages"]

    roots = [m["text"] for m in messages if m["parent"] is None]
    assert roots == ["first draft question", "What should I pack?"]
    earlier: set[int] = set()
    for message in messages:
        assert message["parent"] is None or message["parent"] in earlier
        earlier.add(message["id"])


def test_export_json_has_conversation_fields_and_usage(client, chat):
    document = json.loads(client.get(reverse("export_json", args=[chat.pk])).content)

    assert (document["format"], document["version"]) == ("chatweb.conversation", 1)
    assert document["conversation"]["model"] == "sim-chat"
    assert document["usage"][0]["cost"] == "0.000560"


def test_export_json_usage_names_its_message_and_exact_cost(client, chat):
    (usage,) = exported(client, chat)["usage"]

    record = UsageRecord.objects.get()
    assert (usage["message"], Decimal(usage["cost"])) == (record.message_id, record.cost)
    assert datetime.datetime.fromisoformat(usage["created_at"]) == record.created_at


def test_export_json_lists_attachments_by_zip_path(client, chat):
    image = chat.messages.get(text="What should I pack?").attachments.get()

    document = json.loads(client.get(reverse("export_json", args=[chat.pk])).content)

    listed = [a for m in document["messages"] for a in m["attachments"]]
    assert listed[0]["file"] == f"images/{image.pk}.png"
    assert listed[0]["name"] == "photo.png"


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

    document = json.loads(archive.read("conversation.json"))
    assert [a["file"] for m in document["messages"] for a in m["attachments"]] == [None]


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
