"""Read `input_file` parts (and the Chat Completions `file` part) the way a gateway does.

The simulator cannot read documents, but it can prove it received them intact: it
decodes the data URL and reports the name, type, size and, for a PDF, the pages,
counted from the file's `/Type /Page` objects (a PDF that packs its objects in
compressed streams reports none). Models the catalogue marks as taking files accept
them and bill `FILE_PAGE_TOKENS` a page; the others refuse them with the 400 a real
gateway sends (`file_refused`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from .http import ApiError
from .tokens import count_tokens

__all__ = ["FILE_PAGE_TOKENS", "FileInfo", "file_refused", "read_file_part"]

# What one PDF page costs: real models read each page's text and an image of it.
FILE_PAGE_TOKENS = 500
SUPPORTED_TYPES = ("application/pdf", "application/json", "text/")
EXAMPLE_DATA_URL = "data:application/pdf;base64,SGVsbG8sIFdvcmxkIQ=="
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[\w=.+-]+)*;base64,(?P<data>.*)", re.S)
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What the simulator knows about one received file."""

    filename: str
    mime_type: str
    size: int
    pages: int | None = None
    text: str = ""  # a text file's content, which the model reads

    @property
    def tokens(self) -> int:
        """Return what the file costs as input."""
        if self.mime_type == "application/pdf":
            return FILE_PAGE_TOKENS * max(1, self.pages or 0)
        return count_tokens(self.text)

    def describe(self) -> str:
        """Return e.g. 'report.pdf (PDF, 3 pages, 1,234 bytes)'."""
        kind = "PDF" if self.mime_type == "application/pdf" else self.mime_type
        pages = f"{self.pages} {'page' if self.pages == 1 else 'pages'}, " if self.pages else ""
        return f"{self.filename} ({kind}, {pages}{self.size:,} bytes)"


def file_refused(model: str, param: str) -> ApiError:
    """Return the 400 for a file sent to a model that reads none."""
    return ApiError(
        400,
        f"File inputs are not supported by model '{model}'.",
        param=param,
        code="unsupported_value",
    )


def read_file_part(part: dict[str, Any], path: str, *, data_key: str = "file_data") -> FileInfo:
    """Return the file of an `input_file` part (or a chat `file` part's `file` object);
    raise the gateway's 400 for anything it would refuse."""
    if part.get("file_id") is not None:
        raise ApiError(
            400,
            f"Invalid 'file_id': the simulator keeps no files ('{part['file_id']}').",
            param=f"{path}.file_id",
            code="invalid_value",
        )
    url = part.get("file_url")
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        name = url.rstrip("/").rsplit("/", 1)[-1] or url
        return FileInfo(filename=str(part.get("filename") or name), mime_type="url", size=0)
    data_url = part.get(data_key)
    if not isinstance(data_url, str):
        raise ApiError(
            400,
            f"Missing required parameter: '{path}.{data_key}'.",
            param=f"{path}.{data_key}",
            code="missing_required_parameter",
        )
    filename = part.get("filename")
    if not isinstance(filename, str) or not filename:
        raise ApiError(
            400,
            f"Missing required parameter: '{path}.filename'.",
            param=f"{path}.filename",
            code="missing_required_parameter",
        )
    mime_type, data = _decoded(data_url, f"{path}.{data_key}")
    if mime_type == "application/pdf":
        return FileInfo(filename, mime_type, len(data), pages=len(_PAGE.findall(data)) or None)
    return FileInfo(filename, mime_type, len(data), text=data.decode("utf-8", "replace"))


def _decoded(data_url: str, param: str) -> tuple[str, bytes]:
    match = _DATA_URL.fullmatch(data_url.strip())
    if match is None:
        raise _invalid(param, "but got an invalid value.")
    mime_type = match["mime"].lower()
    if not mime_type.startswith(SUPPORTED_TYPES):
        raise _invalid(param, f"but got unsupported MIME type '{mime_type}'.")
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(param, "but got invalid base64 data.") from None
    if not data:
        raise _invalid(param, "but got an empty file.")
    if mime_type == "application/pdf" and not data.startswith(b"%PDF-"):
        raise _invalid(param, "but the data is not a PDF file.")
    return mime_type, data


def _invalid(param: str, problem: str) -> ApiError:
    """Return OpenAI's 400 for a file data URL it cannot use."""
    return ApiError(
        400,
        f"Invalid file data: '{param}'. Expected a base64-encoded data URL with an "
        f"application/pdf MIME type (e.g. '{EXAMPLE_DATA_URL}'), {problem}",
        param=param,
        code="invalid_value",
    )
