"""Word documents made in the tests: a small real one, and zip bombs that claim one."""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import escape

__all__ = ["docx", "zip_bomb_docx"]

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def document_xml(paragraphs: tuple[str, ...], prologue: str = "") -> str:
    body = "".join(
        '<w:p><w:r><w:t xml:space="preserve">'
        + escape(text).replace("\t", '</w:t><w:tab/><w:t xml:space="preserve">')
        + "</w:t></w:r></w:p>"
        for text in paragraphs
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{prologue}'
        f'<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>'
    )


def package(document: bytes | str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        archive.writestr("word/document.xml", document)
    return buffer.getvalue()


def docx(*paragraphs: str, prologue: str = "") -> bytes:
    """Return a .docx whose body is `paragraphs` (a tab in one becomes Word's tab)."""
    return package(document_xml(paragraphs, prologue))


def zip_bomb_docx(unpacked: int = 64 * 1024 * 1024) -> bytes:
    """Return a .docx of a few dozen KB whose document part unpacks to `unpacked` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", RELS)
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>'.encode())
            chunk = b"a" * (1024 * 1024)
            for _ in range(unpacked // len(chunk)):
                part.write(chunk)
    return buffer.getvalue()
