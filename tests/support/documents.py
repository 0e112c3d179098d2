"""Documents attached to questions, made directly as rows (the upload path is tested apart).

`document` stores a small real PDF (tests/support/pdf.py) as the user's unsent
attachment, with the text and token estimate extraction would have given it;
`text_document` a text file.
"""

from __future__ import annotations

from django.core.files.base import ContentFile

from conversations.models import Attachment
from conversations.usage.ledger import estimate_tokens
from tests.support.pdf import scanned_pdf, text_pdf

__all__ = ["document", "text_document"]

PDF = "application/pdf"


def document(
    user,
    name: str = "report.pdf",
    *,
    pages: list[str] | None = None,
    text: str | None = None,
    scanned: bool = False,
    token_estimate: int | None = None,
) -> Attachment:
    """Store a PDF of `pages` as `user`'s unsent attachment, with its extracted text
    (`text`, else the pages' text; none if `scanned`)."""
    pages = pages if pages is not None else ["Quarterly report", "Revenue grew."]
    data = scanned_pdf(len(pages)) if scanned else text_pdf(*pages)
    extracted = "" if scanned else (text if text is not None else "\n\n".join(pages))
    return _stored(
        user,
        name,
        PDF,
        data,
        text=extracted,
        pages=len(pages),
        note="no_text" if scanned else "",
        token_estimate=token_estimate,
    )


def text_document(
    user, name: str, text: str, *, content_type: str = "text/plain", token_estimate=None
) -> Attachment:
    """Store a text file as `user`'s unsent attachment."""
    return _stored(
        user,
        name,
        content_type,
        text.encode(),
        text=text,
        pages=None,
        note="",
        token_estimate=token_estimate,
    )


def _stored(user, name, content_type, data, *, text, pages, note, token_estimate):
    attachment = Attachment(
        owner=user,
        kind=Attachment.Kind.DOCUMENT,
        content_type=content_type,
        original_name=name,
        size=len(data),
        pages=pages,
        extracted_text=text,
        extraction_note=note,
        token_estimate=token_estimate if token_estimate is not None else estimate_tokens(text),
    )
    attachment.file.save("upload", ContentFile(data), save=False)
    attachment.save()
    return attachment
