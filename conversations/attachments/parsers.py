"""Reading a document's text: PDF (pypdf), Word .docx (standard library) and text files.

These functions run inside a worker process (`extraction.run`), so they import nothing
from Django: the worker starts without settings or apps, and a parser that spins or
swells there is killed without harming the server. They take their limits as
arguments and fail with `Unreadable(code)`; `documents` turns each code into words.

Why .docx without python-docx: python-docx loads every part of the zip into memory as
it opens (a zip bomb would be unpacked before any check could run) and brings lxml, a
large C library, for a job that needs one XML part. Here the zip's declared sizes and
compression ratios are checked first (`check_zip`), only `word/document.xml` is read,
in bounded chunks, and expat refuses any DTD, so no entity is ever declared or
expanded.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from xml.parsers import expat

import charset_normalizer
from pypdf import PasswordType, PdfReader

__all__ = [
    "DOCX",
    "PDF",
    "TEXT",
    "Extracted",
    "Unreadable",
    "decode_text",
    "extract",
    "read_docx",
    "read_pdf",
    "read_text",
]

PDF = "pdf"
DOCX = "docx"
TEXT = "text"

# Why a document was refused (`Unreadable.code`).
ENCRYPTED = "encrypted"
BAD_PDF = "bad_pdf"
TOO_MANY_PAGES = "too_many_pages"
BAD_DOCX = "bad_docx"
NOT_DOCX = "not_docx"
ZIP_BOMB = "zip_bomb"
NOT_TEXT = "not_text"
TOO_COMPLEX = "too_complex"

# Notes on what was extracted (`Extracted.note`, kept as Attachment.extraction_note).
NO_TEXT = "no_text"
TRUNCATED = "truncated"

# A .docx is a zip. These bound what its central directory may declare before anything
# is unpacked: Word's own files have dozens of entries, compress XML about 5-20 times
# and rarely unpack past a few MB; a zip bomb declares thousands of times its size.
MAX_ZIP_ENTRIES = 2_000
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_DOCUMENT_XML_BYTES = 64 * 1024 * 1024
MAX_RATIO = 100
RATIO_CHECKED_FROM = 1024 * 1024  # small parts may compress well without harm
DOCUMENT_XML = "word/document.xml"
WORD_NAMESPACES = {
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",  # "Strict Open XML"
}
READ_CHUNK = 64 * 1024

# Byte order marks, UTF-32 first: its little-endian mark begins with UTF-16's.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Detectors name the common subset of a family when a sample fits it; decode with the
# superset so that rarer characters later in the file still decode.
SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "ascii": "utf-8"}
# Past this share of control characters, "text" is a binary file a codec happened to take.
MAX_CONTROL_SHARE = 0.01
# Characters PostgreSQL cannot store in text (NUL) or that no reader wants from a PDF.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# Control characters but tab, line breaks and form feed, and what a decoder could not read.
BINARY = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")


class Unreadable(Exception):
    """The document cannot be read; `code` says why, `pages` a PDF's page count."""

    def __init__(self, code: str, pages: int | None = None) -> None:
        super().__init__(code, pages)
        self.code = code
        self.pages = pages


@dataclass(frozen=True)
class Extracted:
    """A document's text (at most `max_chars` of it) and what was noted reading it."""

    text: str
    pages: int | None = None
    note: str = ""
    encoding: str | None = None  # a text file's, so it can be stored as UTF-8


def extract(kind: str, data: bytes, *, max_pages: int, max_chars: int) -> Extracted:
    """Return the text of a document of `kind` (PDF, DOCX or TEXT); the worker's target."""
    # pypdf warns on every oddity of a broken file; the refusal says what matters.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        if kind == PDF:
            return read_pdf(data, max_pages=max_pages, max_chars=max_chars)
        if kind == DOCX:
            return read_docx(data, max_chars=max_chars)
        return read_text(data, max_chars=max_chars)
    except MemoryError:
        # The worker's memory cap (`extraction.MEMORY_LIMIT`) was reached.
        raise Unreadable(TOO_COMPLEX) from None


def clean(text: str) -> str:
    """Return text any database and reader takes: no NULs, controls or lone surrogates."""
    text = CONTROL.sub("", text)
    return text.encode("utf-8", "replace").decode("utf-8")


def capped(parts: list[str], max_chars: int, **fields) -> Extracted:
    """Return the joined parts, cut at `max_chars` (noted), or noted as having no text.

    Cut before cleaning, so a long file is cleaned (copied) only as far as it is kept.
    """
    text = "".join(parts)
    if len(text) > max_chars:
        return Extracted(clean(text[:max_chars]), note=TRUNCATED, **fields)
    text = clean(text)
    if not text.strip():
        return Extracted("", note=NO_TEXT, **fields)
    return Extracted(text, **fields)


# --- PDF ---------------------------------------------------------------------------------


def read_pdf(data: bytes, *, max_pages: int, max_chars: int) -> Extracted:
    """Return the text of each page in order (a blank line between pages), with the
    page count.

    A PDF that opens with an empty password (many "protected" PDFs only restrict
    printing or copying) is read; one that needs a password is refused. A page whose
    text cannot be extracted counts as a page without text, so one broken page does not
    lose the others; a PDF whose pages hold no text at all (a scan) is noted NO_TEXT.
    """
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise Unreadable(ENCRYPTED)
        pages = len(reader.pages)
    except (Unreadable, MemoryError):
        raise
    except Exception:
        # pypdf raises many kinds of error on a broken file (PdfReadError, ValueError,
        # KeyError, RecursionError, a missing decryption library, ...): each means the
        # same to the person who uploaded it.
        if b"/Encrypt" in data:
            raise Unreadable(ENCRYPTED) from None
        raise Unreadable(BAD_PDF) from None
    if pages == 0:
        raise Unreadable(BAD_PDF)
    if pages > max_pages:
        raise Unreadable(TOO_MANY_PAGES, pages)
    texts: list[str] = []
    length = 0
    for page in reader.pages:
        try:
            text = page.extract_text() or ""
        except MemoryError:
            raise
        except Exception:
            text = ""
        if text.strip():
            texts.append(text.strip())
            length += len(texts[-1]) + 2
        if length > max_chars:
            break  # the rest would be cut anyway
    return capped(["\n\n".join(texts)], max_chars, pages=pages)


# --- Word (.docx) ------------------------------------------------------------------------


def check_zip(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """Return the document part's entry, or refuse the zip before unpacking anything.

    Only the central directory is read: the declared sizes of every entry, the total,
    and how many times each large entry claims to grow. Declared sizes can lie, so the
    part is also read with a cap (`read_docx`); zipfile stops at the declared size.
    """
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise Unreadable(ZIP_BOMB)
    if sum(entry.file_size for entry in entries) > MAX_UNPACKED_BYTES:
        raise Unreadable(ZIP_BOMB)
    for entry in entries:
        if entry.file_size > RATIO_CHECKED_FROM and entry.file_size > MAX_RATIO * max(
            entry.compress_size, 1
        ):
            raise Unreadable(ZIP_BOMB)
    try:
        document = archive.getinfo(DOCUMENT_XML)
    except KeyError:
        raise Unreadable(NOT_DOCX) from None
    if document.file_size > MAX_DOCUMENT_XML_BYTES:
        raise Unreadable(ZIP_BOMB)
    if document.flag_bits & 0x1:  # an encrypted entry
        raise Unreadable(BAD_DOCX)
    return document


class DocumentText:
    """Collect the text of WordprocessingML as expat reads it, paragraph by paragraph."""

    class Full(Exception):
        """Enough text has been read; stop parsing."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.length = 0
        self.in_text = False

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)
        if self.length > self.max_chars:
            raise self.Full

    def start(self, name: str, attributes) -> None:
        namespace, _, local = name.rpartition(" ")
        if namespace not in WORD_NAMESPACES:
            return
        if local == "t":
            self.in_text = True
        elif local == "tab":
            self.add("\t")
        elif local in ("br", "cr"):
            self.add("\n")

    def end(self, name: str) -> None:
        namespace, _, local = name.rpartition(" ")
        if namespace not in WORD_NAMESPACES:
            return
        if local == "t":
            self.in_text = False
        elif local == "p":
            self.add("\n")

    def characters(self, data: str) -> None:
        if self.in_text:
            self.add(data)


def refuse_declarations(*args) -> None:
    raise Unreadable(BAD_DOCX)


def xml_parser(collector: DocumentText):
    """Return an expat parser feeding `collector` that refuses DTDs and entities."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = refuse_declarations
    parser.EntityDeclHandler = refuse_declarations
    parser.ExternalEntityRefHandler = refuse_declarations
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.characters
    return parser


def read_docx(data: bytes, *, max_chars: int) -> Extracted:
    """Return the text of a Word document's body: paragraphs, tabs and line breaks."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise Unreadable(BAD_DOCX) from None
    with archive:
        document = check_zip(archive)
        collector = DocumentText(max_chars)
        parser = xml_parser(collector)
        read = 0
        try:
            with archive.open(document) as stream:
                while chunk := stream.read(READ_CHUNK):
                    read += len(chunk)
                    if read > MAX_DOCUMENT_XML_BYTES:
                        raise Unreadable(ZIP_BOMB)
                    parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except DocumentText.Full:
            pass
        except (Unreadable, MemoryError):
            raise
        except Exception:
            # expat.ExpatError, zipfile's BadZipFile (a wrong CRC), zlib.error, ...
            raise Unreadable(BAD_DOCX) from None
    return capped(collector.parts, max_chars)


# --- Text -------------------------------------------------------------------------------


def decode_text(data: bytes) -> tuple[str, str]:
    """Return the text and its encoding, or raise Unreadable(NOT_TEXT).

    A byte order mark decides; then UTF-8, which most files are; then a detector
    (charset-normalizer), which finds legacy encodings such as GB18030 or Shift JIS.
    NUL bytes outside UTF-16/32 and a high share of control characters mean binary.
    """
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return checked(data.decode(encoding)), encoding
            except UnicodeDecodeError:
                raise Unreadable(NOT_TEXT) from None
    if b"\x00" in data:
        raise Unreadable(NOT_TEXT)
    try:
        return checked(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise Unreadable(NOT_TEXT)
    encoding = codecs.lookup(best.encoding).name
    encoding = SUPERSETS.get(encoding, encoding)
    return checked(data.decode(encoding, errors="replace")), encoding


def checked(text: str) -> str:
    """Return the text unless too much of it is what no text file holds."""
    if len(BINARY.findall(text)) > MAX_CONTROL_SHARE * max(len(text), 1):
        raise Unreadable(NOT_TEXT)
    return text


def read_text(data: bytes, *, max_chars: int) -> Extracted:
    """Return a text file's text, decoded from whatever encoding it is in."""
    text, encoding = decode_text(data)
    return capped([text], max_chars, encoding=encoding)
