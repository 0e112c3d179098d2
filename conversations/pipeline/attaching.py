"""A question's attachments: claimed for it, carried to its edits, read for the request.

Images need a model that takes them; documents go to any model, as files or as their
text (`inputs`). Reading is `starts`'s: in the turn's transaction, from rows it loaded
or just saved, one query at most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.db.models import prefetch_related_objects
from django.utils.translation import gettext as _

from conversations.attachments import images as attachments
from conversations.attachments.documents import NO_TEXT, TRUNCATED
from conversations.models import Attachment, Message, ModelChoice
from conversations.pipeline import plans
from conversations.pipeline.admission import Refused
from conversations.pipeline.inputs import (
    DocumentInput,
    FileSending,
    ImageInput,
    Input,
    Inputs,
    prepare,
)

__all__ = [
    "attach_files",
    "carry_attachments",
    "load_inputs",
    "refuse_images_unless_accepted",
    "turn_inputs",
]


def turn_inputs(
    branch: Sequence[Message],
    model: ModelChoice,
    *,
    known: Mapping[int, Sequence[Attachment]] | None = None,
) -> Inputs:
    """Return the attachments a turn on `branch` sends, as request parts: the new
    question's, or every question's when the branch is replayed."""
    sending = FileSending.for_model(model)
    sent = branch[-1:] if plans.continues_from(branch, model) else branch
    return prepare(load_inputs(sent, sending, known=known), sending)


def load_inputs(
    messages: Sequence[Message],
    sending: FileSending,
    *,
    known: Mapping[int, Sequence[Attachment]] | None = None,
) -> dict[int, list[Input]]:
    """Return the attachments of the questions among `messages`, read as `sending` needs:
    images' bytes, documents' extracted text, and a PDF's bytes only if it goes as a file.

    Their rows are loaded in one query, for the questions not loaded yet and not in
    `known` (a question's attachments by its id, as the caller saved them): only
    questions carry attachments; answers never need the query.
    """
    known = known or {}
    questions = [m for m in messages if m.role == Message.Role.USER]
    unknown = [question for question in questions if question.pk not in known]
    if unknown:
        prefetch_related_objects(unknown, "attachments")
    return {
        question.pk: [
            loaded_input(attachment, sending)
            for attachment in (
                known[question.pk] if question.pk in known else question.attachments.all()
            )
        ]
        for question in questions
    }


def loaded_input(attachment: Attachment, sending: FileSending) -> Input:
    """Return one attachment as the turn sends it (see `load_inputs`)."""
    if not attachment.is_document:
        return ImageInput(*attachments.image_input(attachment))
    data = None
    if sending.loads(attachment.content_type):
        try:
            with attachment.file.storage.open(attachment.file.name, "rb") as stored:
                data = stored.read()
        except OSError:
            # A file gone from storage still has its text: the model reads that instead.
            data = None
    return DocumentInput(
        name=attachment.original_name or str(attachment),
        content_type=attachment.content_type,
        text=attachment.extracted_text,
        pages=attachment.pages,
        no_text=attachment.extraction_note == NO_TEXT,
        partial=attachment.extraction_note == TRUNCATED,
        token_estimate=attachment.token_estimate,
        data=data,
    )


def attach_files(
    user, question: Message, model: ModelChoice, ids: tuple[int, ...]
) -> list[Attachment]:
    """Give the question the images and documents the user uploaded for it.

    Images need a model that takes them; documents go to any model (as files or as
    their text, `inputs`). Returns them, in order, for the plan and the page; none
    without a query.
    """
    if not ids:
        return []
    try:
        claimed = attachments.claim(user=user, ids=list(ids))
    except attachments.AttachmentError as error:
        raise Refused(error.user_message) from None
    if not all(attachment.is_document for attachment in claimed):
        refuse_images_unless_accepted(model)
    Attachment.objects.filter(pk__in=[a.pk for a in claimed]).update(message=question)
    prefetch_related_objects([question], "attachments")
    return list(question.attachments.all())


def carry_attachments(question: Message, attached: list[Attachment], model: ModelChoice) -> None:
    """Give an edited question the images and documents of the question it replaces.

    The new rows share the stored files; a file goes only with the last row using it
    (`attachments.delete_files`). Leaves the question's `attachments` loaded.
    """
    if not attached:
        return
    if not all(attachment.is_document for attachment in attached):
        refuse_images_unless_accepted(model)
    Attachment.objects.bulk_create(
        Attachment(
            owner_id=old.owner_id,
            message=question,
            file=old.file.name,
            kind=old.kind,
            content_type=old.content_type,
            original_name=old.original_name,
            size=old.size,
            width=old.width,
            height=old.height,
            pages=old.pages,
            extracted_text=old.extracted_text,
            extraction_note=old.extraction_note,
            token_estimate=old.token_estimate,
        )
        for old in attached
    )
    prefetch_related_objects([question], "attachments")


def refuse_images_unless_accepted(model: ModelChoice) -> None:
    if not model.supports_images:
        raise Refused(
            _("%(model)s does not accept images. Remove them or pick another model.")
            % {"model": model.label}
        )
