"""Documents people attach: what counts as one, the limits it must fit, and its text.

What a file is comes from its content, not its name: `%PDF-` makes a PDF, a zip holding
`word/document.xml` a Word document, and anything else is a text file only if its name
says text or code (`TEXT_EXTENSIONS`) and its bytes decode as text (UTF-8, UTF-16/32
with a byte order mark, or a legacy encoding such as GB18030 found by detection). A file
that is not what its name says is refused, never guessed at.

The text is read once, at upload, by `parsers` in a worker process (`extraction`): a
hostile file can make a parser spin or swell, and there it is killed after
`CHAT_EXTRACT_SECONDS`. The text is kept on the attachment for models that take no
files, capped at `CHAT_MAX_EXTRACTED_CHARS` (the cut noted), and its token estimate is
what the quota holds for the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from conversations.attachments import extraction, parsers
from conversations.attachments.images import AttachmentError, describe_bytes
from conversations.attachments.slots import Busy
from conversations.usage.ledger import estimate_tokens

__all__ = [
    "ACCEPT",
    "DOCX_TYPE",
    "NO_TEXT",
    "PAGE_TOKENS",
    "TEXT_EXTENSIONS",
    "TRUNCATED",
    "DocumentInfo",
    "is_document",
    "read_document",
    "token_estimate",
]

logger = logging.getLogger(__name__)

NO_TEXT = parsers.NO_TEXT
TRUNCATED = parsers.TRUNCATED

PDF_TYPE = "application/pdf"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Text files are stored as UTF-8 whatever they came in, under one of these types; code
# and everything else is text/plain.
TEXT_TYPES = {
    "md": "text/markdown",
    "markdown": "text/markdown",
    "csv": "text/csv",
    "json": "application/json",
}
# Split from strings to read as the lists they are.
TEXT_EXTENSIONS = frozenset(
    """
    txt text md markdown rst csv tsv json jsonl ndjson log
    py pyi ipynb js mjs cjs ts tsx jsx java kt kts scala groovy c h cc cpp cxx hpp hh cs go
    rs rb php pl pm swift m mm r jl lua dart ex exs erl hs clj elm fs vb
    sh bash zsh fish ps1 bat cmd sql graphql proto
    html htm css scss sass less vue svelte xml xsl yaml yml toml ini cfg conf properties
    tex bib diff patch gradle cmake mk dockerfile tf hcl gitignore editorconfig
    """.split()  # noqa: SIM905
)
# Files whose name is their kind.
TEXT_NAMES = frozenset(
    "makefile dockerfile readme license licence changelog authors gemfile rakefile".split()  # noqa: SIM905
)
# The file input's accept list: the image types the image checks take, then documents.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
ACCEPT = ",".join(
    [*IMAGE_TYPES, PDF_TYPE, ".pdf", ".docx", *(f".{ext}" for ext in sorted(TEXT_EXTENSIONS))]
)
# Names that promise an image: such a file goes to the image checks, which say it is not
# one if it is not (an SVG, a text file named .png).
IMAGE_EXTENSIONS = frozenset(
    "png jpg jpeg jpe gif webp bmp tif tiff heic heif avif ico".split()  # noqa: SIM905
)
# The first bytes of the image formats the image checks know, long enough not to be text.
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
HEAD_BYTES = 2048

# What a PDF page costs beyond its text when a model reads the file itself: OpenAI puts
# an image of each page into the context beside the extracted text, and a page image
# costs several hundred tokens. The estimate counts it even though a model that takes
# no files gets the text alone: a quota hold that is too large is given back when the
# answer is settled, one that is too small lets a turn spend past the limit.
PAGE_TOKENS = 500

UNKNOWN_KIND = gettext_lazy(
    "Files of this kind cannot be attached. Attach images, PDFs, Word documents (.docx), "
    "or text and code files."
)
MESSAGES = {
    parsers.ENCRYPTED: gettext_lazy(
        "This PDF is protected by a password. Remove the password, then attach it again."
    ),
    parsers.BAD_PDF: gettext_lazy("This PDF could not be read; it may be damaged."),
    parsers.BAD_DOCX: gettext_lazy("This Word document could not be read; it may be damaged."),
    parsers.NOT_DOCX: UNKNOWN_KIND,
    parsers.ZIP_BOMB: gettext_lazy(
        "This Word document would unpack to far more than its size, so it was not opened."
    ),
    parsers.NOT_TEXT: gettext_lazy(
        "This file is not text, though its name says it is. Attach text, code, PDFs or "
        "Word documents."
    ),
    parsers.TOO_COMPLEX: gettext_lazy("This file needs too much memory to read."),
}
TOOK_TOO_LONG = gettext_lazy(
    "Reading this file took too long, so it was stopped. Try a smaller or simpler file."
)
NOT_READ = gettext_lazy("This file could not be read.")


@dataclass(frozen=True)
class DocumentInfo:
    """A document as it will be stored: its bytes, type and what was read from it."""

    content: bytes
    content_type: str
    text: str
    pages: int | None
    note: str
    token_estimate: int


def head_of(uploaded_file) -> bytes:
    uploaded_file.seek(0)
    head = uploaded_file.read(HEAD_BYTES)
    uploaded_file.seek(0)
    return head


def extension_of(name: str | None) -> str:
    """Return the name's extension in lower case, or the whole name when it has none
    (`Makefile`), so both can be looked up in one place."""
    path = PurePosixPath((name or "").replace("\\", "/"))
    return (path.suffix[1:] or path.name).lower()


def is_document(uploaded_file) -> bool:
    """Return whether an upload goes the document way rather than the image checks.

    By content first: a PDF or a zip is a document, an image's signature is not. A file
    with neither goes by what its name or type promises: an image name or type goes to
    the image checks, which refuse it unless it is one.
    """
    head = head_of(uploaded_file)
    if b"%PDF-" in head[:1024] or head.startswith(b"PK\x03\x04"):
        return True
    if head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return False
    promised_type = (getattr(uploaded_file, "content_type", "") or "").lower()
    return not (
        extension_of(uploaded_file.name) in IMAGE_EXTENSIONS or promised_type.startswith("image/")
    )


def kind_of(uploaded_file) -> str:
    """Return which parser reads the file, or refuse a file of no kind we read."""
    head = head_of(uploaded_file)
    extension = extension_of(uploaded_file.name)
    if b"%PDF-" in head[:1024]:
        return parsers.PDF
    if head.startswith(b"PK\x03\x04"):
        return parsers.DOCX  # a zip of another kind is refused once opened (NOT_DOCX)
    if extension == "pdf":
        raise AttachmentError(str(MESSAGES[parsers.BAD_PDF]))
    if extension == "docx":
        raise AttachmentError(str(MESSAGES[parsers.BAD_DOCX]))
    if extension in TEXT_EXTENSIONS or extension in TEXT_NAMES:
        return parsers.TEXT
    raise AttachmentError(str(UNKNOWN_KIND))


def check_size(size: int) -> None:
    if not size:
        raise AttachmentError(_("This file is empty."))
    limit = settings.CHAT_MAX_FILE_BYTES
    if size > limit:
        raise AttachmentError(
            _("This file is %(size)s; the limit is %(limit)s.")
            % {"size": describe_bytes(size), "limit": describe_bytes(limit)}
        )


def token_estimate(text: str, pages: int | None) -> int:
    """Return what the document costs in a model's context, roughly: its text, and for
    a PDF `PAGE_TOKENS` a page for the page images a file-reading model also gets."""
    return estimate_tokens(text) + PAGE_TOKENS * (pages or 0)


def extract(kind: str, data: bytes) -> parsers.Extracted:
    """Return what the worker read from the file, or refuse it with a reason."""
    try:
        return extraction.run(
            parsers.extract,
            kind,
            data,
            max_pages=settings.CHAT_MAX_PDF_PAGES,
            max_chars=settings.CHAT_MAX_EXTRACTED_CHARS,
        )
    except parsers.Unreadable as refused:
        if refused.code == parsers.TOO_MANY_PAGES:
            raise AttachmentError(
                _("This PDF has %(pages)s pages; the limit is %(limit)s.")
                % {"pages": f"{refused.pages:,}", "limit": f"{settings.CHAT_MAX_PDF_PAGES:,}"}
            ) from None
        raise AttachmentError(str(MESSAGES.get(refused.code, NOT_READ))) from None
    except extraction.TimedOut:
        raise AttachmentError(str(TOOK_TOO_LONG)) from None
    except Busy:
        raise AttachmentError(
            _("Many files are being read right now. Attach this one again in a minute.")
        ) from None
    except extraction.ExtractionFailed:
        raise AttachmentError(str(NOT_READ)) from None
    except Exception:
        # A parser's own bug on some file: the person gets a refusal, the log the details.
        logger.exception("Reading an attached %s failed", kind)
        raise AttachmentError(str(NOT_READ)) from None


def read_document(uploaded_file) -> DocumentInfo:
    """Return the document's type, text and estimate, or raise AttachmentError saying
    why it cannot be attached. Blocks while a worker reads it: call from a thread."""
    check_size(uploaded_file.size)
    kind = kind_of(uploaded_file)
    uploaded_file.seek(0)
    data = uploaded_file.read()
    uploaded_file.seek(0)
    read = extract(kind, data)
    if kind == parsers.PDF:
        content_type = PDF_TYPE
    elif kind == parsers.DOCX:
        content_type = DOCX_TYPE
    else:
        # Stored as UTF-8, so a download opens anywhere. Decoding with a known codec is
        # linear stdlib work, safe here; the worker already found the encoding.
        data = data.decode(read.encoding or "utf-8", errors="replace").encode("utf-8")
        content_type = TEXT_TYPES.get(extension_of(uploaded_file.name), "text/plain")
    return DocumentInfo(
        content=data,
        content_type=content_type,
        text=read.text,
        pages=read.pages,
        note=read.note,
        token_estimate=token_estimate(read.text, read.pages),
    )
