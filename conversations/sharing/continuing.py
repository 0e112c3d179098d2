"""Continuing a shared chat: the snapshot copied into a new conversation of the reader's.

The copies carry no response ids, so the first turn replays the whole history: the
owner's ids name responses in the owner's gateway session. Instructions are not copied
(the transcript never showed them), and images become the reader's own files, as
documents do where the link lets readers download them (otherwise the reader never had
them, and the copy would hand them over). The new chat keeps the assistant only if the
reader may use it themselves; its instructions then come from the assistant at each
turn, never copied into the chat's own.
"""

from __future__ import annotations

from django.core.files import File
from django.db import transaction

from conversations.assistants.library import usable_assistant
from conversations.attachments.images import save_with_file
from conversations.models import Assistant, Attachment, Conversation, Message, ShareLink
from conversations.sharing.links import snapshot_messages

__all__ = ["continue_in_new_chat"]


def copy_message(
    message: Message,
    *,
    conversation: Conversation,
    parent: Message | None,
    assistant: Assistant | None,
):
    """Copy what the reader saw; response ids and usage stay with the owner.

    An answer names its assistant only if it is the one the reader may use (`assistant`).
    """
    same = assistant is not None and message.assistant_id == assistant.pk
    return Message.objects.create(
        conversation=conversation,
        parent=parent,
        role=message.role,
        # The reader's own conversation: its questions are theirs now.
        author=conversation.owner if message.role == Message.Role.USER else None,
        text=message.text,
        status=message.status,
        error=message.error,
        error_code=message.error_code,
        model_name=message.model_name,
        reasoning_effort=message.reasoning_effort,
        reasoning_summary=message.reasoning_summary,
        citations=message.citations,
        tool_calls=message.tool_calls,
        web_searches=message.web_searches,
        # What the attachments cost as the owner sent them; the caller sets it to nothing
        # when the documents stay behind.
        attachment_tokens=message.attachment_tokens,
        assistant=assistant if same else None,
        assistant_version=message.assistant_version if same else None,
        created_at=message.created_at,
    )


# What a copy of an attachment keeps besides its file, its owner and its message: an
# image's size, a document's pages and extracted text (read once, at upload).
COPIED_FIELDS = (
    "kind",
    "content_type",
    "original_name",
    "size",
    "width",
    "height",
    "pages",
    "extracted_text",
    "extraction_note",
    "token_estimate",
)


def copy_attachment(attachment: Attachment, *, owner, message: Message) -> Attachment:
    """Store a new file with the attachment's bytes (an image or a document), owned by
    `owner`."""
    copy = Attachment(
        owner=owner,
        message=message,
        **{name: getattr(attachment, name) for name in COPIED_FIELDS},
    )
    with attachment.file.storage.open(attachment.file.name, "rb") as source:
        return save_with_file(copy, File(source))


def continue_in_new_chat(*, link: ShareLink, user) -> Conversation:
    """Copy the snapshot into a new conversation of `user`'s, as one linear branch."""
    source = link.conversation
    messages = snapshot_messages(link)
    copied_files: list[Attachment] = []
    try:
        with transaction.atomic():
            model = source.model if source.model and source.model.enabled else None
            assistant = usable_assistant(user, source.assistant_id)
            conversation = Conversation.objects.create(
                owner=user, title=source.title, model=model, assistant=assistant
            )
            parent = None
            for message in messages:
                parent = copy_message(
                    message, conversation=conversation, parent=parent, assistant=assistant
                )
                for attachment in message.attachments.all():
                    if attachment.is_document and not link.allow_downloads:
                        # Left behind: later holds must not count it (an image's few
                        # tokens go uncounted with it; the reader's first turn, a
                        # replay, counts what is really sent).
                        Message.objects.filter(pk=parent.pk).update(attachment_tokens=0)
                        continue
                    copied_files.append(copy_attachment(attachment, owner=user, message=parent))
    except BaseException:
        # The rows rolled back; the files they pointed at are not in any transaction.
        for image in copied_files:
            image.file.storage.delete(image.file.name)
        raise
    return conversation
