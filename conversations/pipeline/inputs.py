"""What a question sends besides its words: its images and its documents.

`starts` loads the attachments of the questions a turn sends into plain values
(`ImageInput`, `DocumentInput`) and `prepare` turns each question's into request parts
once, with what they cost; `plans` builds the request from those and touches no file.

How a document goes depends on the catalogue entry (`FileSending.for_model`):

- a PDF goes as a file (`input_file`, billed by the gateway) when the model takes files
  and its gateway has not refused them (`"input_file"` in `unsupported_params`);
- every other document, and a PDF otherwise, goes as the text extracted at upload,
  framed by its name (`request.document_text_part`) and cut to fit: the documents of one
  message share `FILE_TEXT_SHARE` of the model's context window (`CHAT_FILE_TEXT_TOKENS`
  for a model without one). What a cut left out is said in the text the model reads and
  in a note on the answer (`file_text_cut`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from django.conf import settings

from conversations.gateway.request import LeftOut, document_text_part, file_part, user_message
from conversations.usage.ledger import estimate_tokens

if TYPE_CHECKING:
    from conversations.models import ModelChoice

__all__ = [
    "FILE_TEXT_SHARE",
    "IMAGE_TOKENS",
    "NO_INPUTS",
    "DocumentInput",
    "FileSending",
    "ImageInput",
    "Input",
    "Inputs",
    "Loaded",
    "QuestionInputs",
    "cut_text",
    "prepare",
    "prepare_question",
]

# What an image costs in the context window, roughly (a tiled 1024 px image is ~800).
IMAGE_TOKENS = 1000
# The share of a model's context window the text of one message's documents may take
# together; the rest is left for the conversation, the instructions and the answer.
FILE_TEXT_SHARE = 0.5
PDF = "application/pdf"


@dataclass(frozen=True, slots=True)
class ImageInput:
    """An attached image: its type and bytes, sent as an `input_image` data URL."""

    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """An attached document as a turn sends it.

    `text` is what was extracted at upload; `no_text` says none could be (a scanned
    PDF) and `partial` that it is only the start (the upload's cap). `data` holds a
    PDF's bytes only when it goes as a file; `token_estimate` is what the file costs
    the model then, as the upload estimated it.
    """

    name: str
    content_type: str
    text: str = ""
    pages: int | None = None
    no_text: bool = False
    partial: bool = False
    token_estimate: int = 0
    data: bytes | None = None

    @property
    def is_pdf(self) -> bool:
        return self.content_type == PDF


Input = ImageInput | DocumentInput


@dataclass(frozen=True, slots=True)
class FileSending:
    """How a turn sends documents: PDFs as files or not, and the tokens the text of one
    message's documents may take together."""

    as_files: bool = False
    budget: int = 60_000

    @classmethod
    def for_model(cls, model: ModelChoice) -> FileSending:
        """Return how documents go to `model`, from its catalogue entry."""
        window = model.context_window
        return cls(
            as_files=model.supports_files and "input_file" not in (model.unsupported_params or {}),
            budget=int(window * FILE_TEXT_SHARE) if window else settings.CHAT_FILE_TEXT_TOKENS,
        )

    def loads(self, content_type: str) -> bool:
        """Return whether a document of `content_type` goes as a file, so its bytes are read."""
        return self.as_files and content_type == PDF


@dataclass(frozen=True, slots=True)
class QuestionInputs:
    """One question's attachments as request parts, with what they cost.

    `sources` are the inputs the parts were made from, so the question can be sent
    again another way (`plans.files_as_text`); `cuts` are the answer's notes about
    documents cut to fit.
    """

    sources: tuple[Input, ...] = ()
    documents: tuple[dict[str, Any], ...] = ()
    images: tuple[tuple[str, bytes], ...] = ()
    tokens: int = 0
    cuts: tuple[dict[str, Any], ...] = field(default=())

    def message(self, text: str) -> dict[str, Any]:
        """Return the question as a user message item: `text` and these attachments."""
        return user_message(text, self.images, self.documents)


# The attachments of the questions a turn sends, by message id: as loaded, and as parts.
Loaded = Mapping[int, Sequence[Input]]
Inputs = Mapping[int, QuestionInputs]
NO_INPUTS = QuestionInputs()


def prepare(loaded: Loaded, sending: FileSending) -> dict[int, QuestionInputs]:
    """Return each question's attachments (by message id) as request parts."""
    return {pk: prepare_question(sources, sending) for pk, sources in loaded.items()}


def prepare_question(sources: Iterable[Input], sending: FileSending) -> QuestionInputs:
    """Return one question's attachments as request parts: images, PDFs as files where
    `sending` says so, other documents as framed text sharing `sending.budget`."""
    sources = tuple(sources)
    images = tuple((s.mime_type, s.data) for s in sources if isinstance(s, ImageInput))
    tokens = IMAGE_TOKENS * len(images)
    documents = [s for s in sources if isinstance(s, DocumentInput)]
    as_file = [sending.as_files and d.is_pdf and d.data is not None for d in documents]
    as_text = [d for d, file in zip(documents, as_file, strict=True) if not file]
    allowed = iter(
        shares([0 if d.no_text else estimate_tokens(d.text) for d in as_text], sending.budget)
    )
    parts = []
    cuts = []
    for document, file in zip(documents, as_file, strict=True):
        if file:
            parts.append(file_part(document.name, document.content_type, document.data or b""))
            tokens += document.token_estimate
            continue
        text, left_out = cut_text(document.text, next(allowed))
        part = document_text_part(
            document.name,
            text,
            pages=document.pages,
            left_out=left_out,
            no_text=document.no_text,
            partial=document.partial,
        )
        parts.append(part)
        tokens += estimate_tokens(part["text"])
        if left_out is not None:
            cuts.append(
                {
                    "code": "file_text_cut",
                    "name": document.name,
                    "count": left_out.count,
                    "total": left_out.total,
                    "unit": left_out.unit,
                }
            )
    return QuestionInputs(sources, tuple(parts), images, tokens, tuple(cuts))


def shares(costs: Sequence[int], budget: int) -> list[int]:
    """Return the tokens each of `costs` may take of `budget`: an even share each, and
    what a smaller one leaves over goes to the larger ones."""
    allowed = [0] * len(costs)
    left = max(0, budget)
    order = sorted(range(len(costs)), key=costs.__getitem__)
    for position, index in enumerate(order):
        share = left // (len(order) - position)
        allowed[index] = min(costs[index], share)
        left -= allowed[index]
    return allowed


def cut_text(text: str, budget: int) -> tuple[str, LeftOut | None]:
    """Return the start of `text` that fits in `budget` tokens, and what was left out.

    Whole lines where the text has them (a log, code), else characters. Every character
    costs at least a quarter of a token (`estimate_tokens`), so no prefix longer than
    `longest_fit(budget)` fits: the search never estimates more than that, however long
    the file (a 2-million-character file is read in a few short estimates, not many
    long ones, inside the turn's transaction).
    """
    if len(text) <= longest_fit(budget) and estimate_tokens(text) <= budget:
        return text, None
    ends = list(accumulate(len(line) for line in text.splitlines(keepends=True)))
    # The most lines whose text fits, found by halving: each guess costs one estimate.
    low, high = 0, bisect_right(ends, longest_fit(budget))
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(text[: ends[middle - 1]]) <= budget:
            low = middle
        else:
            high = middle - 1
    if len(ends) > 1 and low:
        return text[: ends[low - 1]], LeftOut(len(ends) - low, len(ends), "lines")
    length = fitting_length(text, budget)
    return text[:length], LeftOut(len(text) - length, len(text), "characters")


def longest_fit(budget: int) -> int:
    """Return the most characters any text within `budget` tokens can have."""
    return 4 * budget + 3


def fitting_length(text: str, budget: int) -> int:
    """Return the longest prefix of `text` (in characters) within `budget` tokens."""
    low, high = 0, min(len(text), longest_fit(budget))
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low
