"""Export conversations: Markdown to read, versioned JSON to keep, zips with the files.

The JSON document is the complete record: every message of the tree (edits and retries
included, each naming its parent), token usage, reasoning summaries, citations, tool
calls, web searches, attachments and the conversation's usage records, timestamps at
full precision. The Markdown is the transcript as the chat page shows it: the branch on
screen.

Zips are built in a spooled temporary file (memory first, disk past a few megabytes)
because Daphne buffers a whole response body anyway; `MAX_IMAGE_BYTES` bounds them.
"""

from __future__ import annotations

import datetime
import json
import logging
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import override

from conversations.attachments.images import EXTENSIONS
from conversations.models import Attachment, Conversation, Message, UsageRecord
from conversations.rendering.citations import number_citations

__all__ = [
    "ACCOUNT_FORMAT",
    "FORMAT",
    "MAX_IMAGE_BYTES",
    "VERSION",
    "Bundle",
    "ExportTooLarge",
    "account_zip",
    "attachment_name",
    "bundles",
    "content_disposition",
    "conversation_document",
    "conversation_json",
    "conversation_markdown",
    "conversation_zip",
]

logger = logging.getLogger(__name__)

FORMAT = "chatweb.conversation"
ACCOUNT_FORMAT = "chatweb.account"
VERSION = 1
# The most image bytes one zip may carry; past it the export is refused, not truncated.
MAX_IMAGE_BYTES = 256 * 1024 * 1024
# Zips stay in memory up to this size, then spill to a temporary file.
SPOOL_BYTES = 16 * 1024 * 1024


class ExportTooLarge(Exception):
    """The images of an export add up to more than MAX_IMAGE_BYTES."""


@dataclass(frozen=True)
class Bundle:
    """A conversation with all its messages (oldest first, images prefetched) and usage."""

    conversation: Conversation
    messages: list[Message]
    usage: list[UsageRecord]

    @property
    def attachments(self) -> list[Attachment]:
        return [image for message in self.messages for image in message.attachments.all()]


def bundles(user, conversations: QuerySet[Conversation]) -> list[Bundle]:
    """Load the conversations with their messages, images and usage in four queries."""
    found = list(conversations.select_related("model").order_by("-updated_at", "-pk"))
    messages: dict[int, list[Message]] = defaultdict(list)
    for message in (
        Message.objects.filter(conversation__in=conversations)
        .order_by("created_at", "pk")
        .prefetch_related("attachments")
    ):
        messages[message.conversation_id].append(message)
    usage: dict[int, list[UsageRecord]] = defaultdict(list)
    # Only the owner's own records: nobody else's spending rides along in their export.
    for record in UsageRecord.objects.filter(user=user, conversation__in=conversations).order_by(
        "created_at", "pk"
    ):
        usage[record.conversation_id].append(record)
    return [Bundle(c, messages[c.pk], usage[c.pk]) for c in found]


# --- JSON ----------------------------------------------------------------------------


def iso(value: datetime.datetime | None) -> str | None:
    # Full precision, unlike DjangoJSONEncoder's milliseconds, so timestamps round-trip.
    return value.isoformat() if value is not None else None


def attachment_name(attachment: Attachment) -> str:
    """Return the attachment's path inside an export zip: images/12.png for an image,
    files/13/report.pdf for a document, under the name it was uploaded with."""
    if attachment.is_document:
        return f"files/{attachment.pk}/{safe_file_name(attachment.original_name)}"
    return f"images/{attachment.pk}.{EXTENSIONS.get(attachment.content_type, 'bin')}"


def safe_file_name(name: str) -> str:
    """Return the last part of an uploaded name, never a path out of its folder."""
    last = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    # Nor a name that ends the Markdown link around it early.
    last = last.replace("<", "").replace(">", "")
    return last or "file"


def attachment_entry(attachment: Attachment, missing: frozenset[int]) -> dict[str, Any]:
    return {
        "id": attachment.pk,
        "kind": attachment.kind,
        "file": None if attachment.pk in missing else attachment_name(attachment),
        "name": attachment.original_name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "pages": attachment.pages,
    }


def message_entry(message: Message, missing: frozenset[int]) -> dict[str, Any]:
    return {
        "id": message.pk,
        "parent": message.parent_id,
        "role": message.role,
        "text": message.text,
        "status": message.status,
        "error": message.error,
        "model": message.model_name,
        "reasoning_effort": message.reasoning_effort,
        "reasoning_summary": message.reasoning_summary,
        "created_at": iso(message.created_at),
        "updated_at": iso(message.updated_at),
        "usage": {
            "input_tokens": message.input_tokens,
            "output_tokens": message.output_tokens,
            "reasoning_tokens": message.reasoning_tokens,
        },
        "citations": message.citations,
        "tool_calls": message.tool_calls,
        "web_searches": message.web_searches,
        "attachments": [attachment_entry(a, missing) for a in message.attachments.all()],
    }


def usage_entry(record: UsageRecord) -> dict[str, Any]:
    return {
        "id": record.pk,
        "message": record.message_id,
        "model": record.model_name,
        "purpose": record.purpose,
        "input_tokens": record.input_tokens,
        "cached_tokens": record.cached_tokens,
        "output_tokens": record.output_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "total_tokens": record.total_tokens,
        "cost": str(record.cost),
        "estimated": record.estimated,
        "created_at": iso(record.created_at),
    }


def conversation_document(
    bundle: Bundle, *, missing: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """Return the export document; images in `missing` are listed with no file."""
    conversation = bundle.conversation
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": iso(timezone.now()),
        "conversation": {
            "id": conversation.pk,
            "title": conversation.title,
            "model": conversation.model.upstream_id if conversation.model else None,
            "instructions": conversation.instructions,
            "archived": conversation.archived,
            "pinned": conversation.pinned,
            "current_leaf": conversation.current_leaf_id,
            "created_at": iso(conversation.created_at),
            "updated_at": iso(conversation.updated_at),
        },
        "messages": [message_entry(m, missing) for m in bundle.messages],
        "usage": [usage_entry(r) for r in bundle.usage],
    }


def conversation_json(bundle: Bundle, *, missing: frozenset[int] = frozenset()) -> str:
    return json.dumps(conversation_document(bundle, missing=missing), ensure_ascii=False, indent=2)


# --- Markdown ------------------------------------------------------------------------


def when(value: datetime.datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M %Z")


def fenced(text: str, info: str = "") -> str:
    """Return `text` as a fenced code block whose fence no backtick run inside can close."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def quoted(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in text.splitlines())


def as_json(value: Any) -> Any:
    """Return a tool's arguments or output as data when it is JSON, else as it was."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def link_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def message_markdown(message: Message) -> str:
    if message.role == Message.Role.USER:
        heading = f"## You · {when(message.created_at)}"
    else:
        heading = (
            f"## Assistant · {message.model_name or 'unknown model'} · {when(message.created_at)}"
        )
    parts = [heading]
    if message.reasoning_summary:
        parts.append(quoted(f"**Reasoning summary**\n\n{message.reasoning_summary}"))
    for search in message.web_searches:
        if search.get("query"):
            parts.append(f"_Searched the web for “{search['query']}”._")
    for call in message.tool_calls:
        details = {
            "name": call.get("name"),
            "arguments": as_json(call.get("arguments")),
            "output": as_json(call.get("output")),
            "ok": call.get("ok"),
        }
        parts.append(f"**Tool call `{call.get('name')}`**")
        parts.append(fenced(json.dumps(details, ensure_ascii=False, indent=2), "json"))
    text, sources = number_citations(message.text, message.citations)
    if text:
        parts.append(text)
    attachments = [
        # <…> around the path: a file name may hold spaces and parentheses.
        f"[{link_text(str(attachment))}](<{attachment_name(attachment)}>)"
        if attachment.is_document
        else f"![{link_text(str(attachment))}]({attachment_name(attachment)})"
        for attachment in message.attachments.all()
    ]
    if attachments:
        parts.append("\n".join(attachments))
    if sources:
        listed = "\n".join(
            f"{s['number']}. [{link_text(s['title'])}]({s['url']}) ({s['domain']})" for s in sources
        )
        parts.append(f"**Sources**\n\n{listed}")
    if message.status != Message.Status.COMPLETE:
        with override("en"):  # exports are in English; the status labels are translatable
            parts.append(f"_Status: {message.get_status_display()}._")
    if message.error:
        parts.append(f"_Error: {message.error}_")
    return "\n\n".join(parts)


def conversation_markdown(conversation: Conversation) -> str:
    """Return the transcript on screen (the visible branch) as Markdown."""
    branch = conversation.visible_branch()
    title = " ".join(conversation.title.split()) or "New conversation"
    about = [f"Exported from chatweb on {when(timezone.now())}"]
    if conversation.model:
        about.append(f"model: {conversation.model.label} ({conversation.model.upstream_id})")
    about.append(f"{len(branch)} message{'s' if len(branch) != 1 else ''}")
    parts = [f"# {title}", " · ".join(about)]
    if conversation.messages.count() > len(branch):
        parts.append("_This is the branch on screen; the JSON export holds every version._")
    if conversation.instructions:
        parts.append(quoted(f"**Instructions**\n\n{conversation.instructions}"))
    parts.extend(message_markdown(message) for message in branch)
    return "\n\n".join(parts) + "\n"


# --- Zips ----------------------------------------------------------------------------


def check_size(attachments: Iterable[Attachment]) -> None:
    total = sum(attachment.size for attachment in attachments)
    if total > MAX_IMAGE_BYTES:
        raise ExportTooLarge(
            f"The attachments come to {total // (1024 * 1024)} MB, more than one export may "
            f"carry ({MAX_IMAGE_BYTES // (1024 * 1024)} MB)."
        )


def write_images(archive: zipfile.ZipFile, attachments: Iterable[Attachment]) -> frozenset[int]:
    """Copy each attachment into the zip; return the ids of those missing from storage."""
    missing = set()
    for attachment in attachments:
        try:
            with (
                attachment.file.storage.open(attachment.file.name, "rb") as stored,
                archive.open(zip_entry(attachment), "w") as target,
            ):
                while chunk := stored.read(1024 * 1024):
                    target.write(chunk)
        except OSError:
            logger.warning("Export: attachment %s is missing from storage", attachment.pk)
            missing.add(attachment.pk)
    return frozenset(missing)


def zip_entry(attachment: Attachment) -> zipfile.ZipInfo:
    uploaded = timezone.localtime(attachment.created_at).timetuple()[:6]
    entry = zipfile.ZipInfo(attachment_name(attachment), date_time=uploaded)
    # Images are stored as they are (compressed already); documents are deflated.
    if attachment.is_document:
        entry.compress_type = zipfile.ZIP_DEFLATED
    return entry


def new_zip() -> tuple[IO[bytes], zipfile.ZipFile]:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned
    return spool, zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED)


def conversation_zip(bundle: Bundle) -> IO[bytes]:
    """Return a file holding conversation.json, conversation.md and images/, at its start."""
    check_size(bundle.attachments)
    spool, archive = new_zip()
    with archive:
        missing = write_images(archive, bundle.attachments)
        archive.writestr("conversation.json", conversation_json(bundle, missing=missing))
        archive.writestr("conversation.md", conversation_markdown(bundle.conversation))
    spool.seek(0)
    return spool


def account_zip(user) -> IO[bytes]:
    """Return a file with index.json, conversations/<id>.json and images/ for all of them."""
    loaded = bundles(user, Conversation.objects.for_user(user))
    check_size(image for bundle in loaded for image in bundle.attachments)
    spool, archive = new_zip()
    with archive:
        index = []
        for bundle in loaded:
            missing = write_images(archive, bundle.attachments)
            name = f"conversations/{bundle.conversation.pk}.json"
            archive.writestr(name, conversation_json(bundle, missing=missing))
            index.append(index_entry(bundle, name))
        document = {
            "format": ACCOUNT_FORMAT,
            "version": VERSION,
            "exported_at": iso(timezone.now()),
            "user": user.get_username(),
            "conversations": index,
        }
        archive.writestr("index.json", json.dumps(document, ensure_ascii=False, indent=2))
    spool.seek(0)
    return spool


def index_entry(bundle: Bundle, name: str) -> dict[str, Any]:
    conversation = bundle.conversation
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "file": name,
        "archived": conversation.archived,
        "messages": len(bundle.messages),
        "images": len(bundle.attachments),
        "created_at": iso(conversation.created_at),
        "updated_at": iso(conversation.updated_at),
    }


# --- Downloads -----------------------------------------------------------------------


def content_disposition(title: str, suffix: str) -> str:
    """Return an attachment header named after `title` + `suffix`, e.g. "trip-4.md".

    `filename` is always an ASCII slug; a title in another script adds an RFC 6266
    `filename*` with its Unicode slug, percent-encoded, which browsers prefer.
    """
    plain = slugify(title)[:60].strip("-_") or "conversation"
    header = f'attachment; filename="{plain}{suffix}"'
    unicode = slugify(title, allow_unicode=True)[:60].strip("-_")
    if unicode and unicode != plain:
        header += f"; filename*=UTF-8''{quote(unicode + suffix, safe='')}"
    return header
