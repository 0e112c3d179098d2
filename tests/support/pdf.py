"""Real PDFs made in the tests: text on N pages, scanned (image-only), encrypted, broken.

A few dozen lines of PDF by hand (objects, a cross-reference table, a trailer) keep the
files tiny and their content obvious; pypdf's writer encrypts them, as a real tool would.
"""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter

__all__ = ["broken_pdf", "encrypted_pdf", "scanned_pdf", "text_pdf", "truncated_pdf"]

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n%s\nendstream" % (len(data), extra, data)


def escaped(line: str) -> bytes:
    data = line.encode("cp1252")
    return data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def text_content(text: str) -> bytes:
    shown = b" ".join(b"(%s) Tj T*" % escaped(line) for line in text.split("\n"))
    return b"BT /F1 12 Tf 14 TL 72 720 Td " + shown + b" ET"


def assemble(pages: list[tuple[bytes, bytes, list[bytes]]]) -> bytes:
    """Return a PDF of `pages`: each its resources, content stream and extra objects.

    Objects: 1 catalog, 2 page tree, 3 font, then per page the page, its content and its
    extra objects (referred to from the resources as numbers relative to the page: the
    placeholder `{+k}` in resources is the page's k-th extra object).
    """
    objects: list[bytes] = [b"", b"", FONT]
    kids = []
    for resources, content, extras in pages:
        page_number = len(objects) + 1
        kids.append(b"%d 0 R" % page_number)
        for k in range(len(extras)):
            resources = resources.replace(b"{+%d}" % k, b"%d" % (page_number + 2 + k))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources %s "
            b"/Contents %d 0 R >>" % (resources, page_number + 1)
        )
        objects.append(stream(content))
        objects.extend(extras)
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def text_pdf(*pages: str) -> bytes:
    """Return a PDF with one page per argument, each showing that text (lines by "\\n")."""
    return assemble([(b"<< /Font << /F1 3 0 R >> >>", text_content(text), []) for text in pages])


def scanned_pdf(pages: int = 1) -> bytes:
    """Return a PDF whose pages are only a picture, as a scanner makes them: no text."""
    pixels = bytes((x * 16 + y * 8) % 256 for y in range(16) for x in range(16))
    image = stream(
        pixels,
        b"/Type /XObject /Subtype /Image /Width 16 /Height 16 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 ",
    )
    page = (b"<< /XObject << /Im1 {+0} 0 R >> >>", b"q 468 0 0 648 72 72 cm /Im1 Do Q", [image])
    return assemble([page] * pages)


def encrypted_pdf(
    *pages: str, user_password: str = "secret", owner_password: str = "owner"
) -> bytes:
    """Return `text_pdf(*pages)` encrypted with AES-256; an empty `user_password` makes
    a PDF anyone may open (only the owner's rights are protected)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf(*pages))))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def broken_pdf() -> bytes:
    """Return a file that starts like a PDF and then is not one."""
    return b"%PDF-1.7\n" + b"this is not a PDF body, no objects, no xref, no trailer\n" * 20


def truncated_pdf() -> bytes:
    """Return a real PDF cut off before its page tree and cross-reference table."""
    whole = text_pdf("First page", "Second page")
    return whole[: whole.index(b"2 0 obj")]
