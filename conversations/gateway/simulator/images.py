"""Decode `input_image` data URLs and read image dimensions from the file header.

The simulator cannot see pictures, but it can prove it received them intact: it reports
the MIME type, the decoded size and, for PNG, GIF and JPEG, the width and height read
from the header bytes (no imaging library needed).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

__all__ = ["ImageInfo", "InvalidImage", "read_data_url"]

SUPPORTED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[\w=.+-]+)*;base64,(?P<data>.*)", re.S)


class InvalidImage(ValueError):
    """The image is not something a real gateway would accept; the text says why."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the simulator knows about one received image."""

    mime_type: str
    size: int
    width: int | None = None
    height: int | None = None

    def describe(self) -> str:
        """Return e.g. 'PNG, 2\u00d73 pixels, 75 bytes' (with a multiplication sign)."""
        kind = self.mime_type.split("/")[-1].upper()
        dimensions = (
            f"{self.width}\u00d7{self.height} pixels, " if self.width and self.height else ""
        )
        return f"{kind}, {dimensions}{self.size:,} bytes"


def read_data_url(url: str) -> ImageInfo:
    """Return what is in a base64 image data URL; raise `InvalidImage` if it is not one."""
    match = _DATA_URL.fullmatch(url.strip())
    if match is None:
        raise InvalidImage("but got an invalid value.")
    mime_type = match["mime"].lower()
    if mime_type not in SUPPORTED_TYPES:
        raise InvalidImage(f"but got unsupported MIME type '{mime_type}'.")
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage("but got invalid base64 data.") from None
    if not data:
        raise InvalidImage("but got an empty image.")
    if not _looks_like_image(data):
        raise InvalidImage("but the data is not a PNG, JPEG, GIF or WebP image.")
    width, height = _dimensions(data)
    return ImageInfo(mime_type=mime_type, size=len(data), width=width, height=height)


def _looks_like_image(data: bytes) -> bool:
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"GIF87a", b"GIF89a")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )


def _dimensions(data: bytes) -> tuple[int | None, int | None]:
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        return _jpeg_dimensions(data)
    return None, None


def _jpeg_dimensions(data: bytes) -> tuple[int | None, int | None]:
    """Walk the JPEG segments to the first start-of-frame marker, which holds the size."""
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None, None
        marker = data[position + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None, None
