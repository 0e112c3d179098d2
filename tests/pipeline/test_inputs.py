"""How a question's documents go: as files where the model reads them, else as text cut
to a budget that the documents of one message share."""

from __future__ import annotations

import pytest

from conversations.models import ModelChoice
from conversations.pipeline.inputs import (
    FILE_TEXT_SHARE,
    IMAGE_TOKENS,
    DocumentInput,
    FileSending,
    ImageInput,
    cut_text,
    prepare_question,
    shares,
)
from conversations.usage.ledger import estimate_tokens

PDF = "application/pdf"


def pdf(name="report.pdf", text="Revenue grew.", data=b"%PDF-1.4", estimate=1200):
    return DocumentInput(name, PDF, text=text, pages=2, token_estimate=estimate, data=data)


def test_a_pdf_goes_as_a_file_where_the_model_reads_files():
    inputs = prepare_question([pdf()], FileSending(as_files=True, budget=1000))

    [part] = inputs.documents
    assert part["type"] == "input_file"
    assert part["filename"] == "report.pdf"
    assert inputs.tokens == 1200  # the upload's estimate: text and page images
    assert inputs.cuts == ()


def test_a_pdf_goes_as_its_text_where_the_model_reads_no_files():
    inputs = prepare_question([pdf()], FileSending(as_files=False, budget=1000))

    [part] = inputs.documents
    assert part["type"] == "input_text"
    assert part["text"].startswith("File: report.pdf (2 pages)\n```\nRevenue grew.\n```")
    assert inputs.tokens == estimate_tokens(part["text"])


def test_other_documents_go_as_text_even_to_a_model_that_reads_files():
    log = DocumentInput("app.log", "text/plain", text="started\n")

    inputs = prepare_question([log], FileSending(as_files=True, budget=1000))

    assert inputs.documents[0]["type"] == "input_text"


def test_a_long_log_is_cut_by_lines_and_noted():
    text = "".join(f"2025-01-01 12:00:{n % 60:02d} request {n} served\n" for n in range(10_000))
    log = DocumentInput("app.log", "text/plain", text=text)

    inputs = prepare_question([log], FileSending(budget=2_000))

    [note] = inputs.cuts
    assert note["code"] == "file_text_cut"
    assert (note["name"], note["total"], note["unit"]) == ("app.log", 10_000, "lines")
    assert 9_000 < note["count"] < 10_000
    assert inputs.tokens <= 2_000 + 60  # the budget, and the frame around the text
    assert (
        f"[Left out: the last {note['count']:,} of 10,000 lines of app.log"
        in (inputs.documents[0]["text"])
    )


def test_one_long_line_is_cut_by_characters():
    kept, left_out = cut_text("x" * 10_000, 100)

    assert len(kept) == 400
    assert (left_out.count, left_out.total, left_out.unit) == (9_600, 10_000, "characters")


def test_text_within_the_budget_is_sent_whole():
    assert cut_text("short\ntext\n", 100) == ("short\ntext\n", None)


def test_documents_of_one_message_share_the_budget_the_small_first():
    assert shares([100, 5_000, 5_000], 3_000) == [100, 1_450, 1_450]
    assert shares([10, 20], 1_000) == [10, 20]
    assert sum(shares([7_000, 9_000, 1], 6_000)) == 6_000


def test_images_count_in_the_tokens():
    inputs = prepare_question([ImageInput("image/png", b"png")], FileSending())

    assert inputs.images == (("image/png", b"png"),)
    assert inputs.tokens == IMAGE_TOKENS


@pytest.mark.parametrize(
    ("supports_files", "rejected", "as_files"),
    [(True, {}, True), (False, {}, False), (True, {"input_file": {"at": "…"}}, False)],
)
def test_pdfs_go_as_files_while_the_model_takes_them(supports_files, rejected, as_files):
    model = ModelChoice(supports_files=supports_files, unsupported_params=rejected)

    assert FileSending.for_model(model).as_files is as_files


def test_text_budget_is_a_share_of_the_window_or_the_setting(settings):
    settings.CHAT_FILE_TEXT_TOKENS = 12_345

    assert FileSending.for_model(ModelChoice(context_window=100_000)).budget == int(
        100_000 * FILE_TEXT_SHARE
    )
    assert FileSending.for_model(ModelChoice(context_window=None)).budget == 12_345


def test_cutting_a_huge_file_never_estimates_more_than_can_fit(monkeypatch):
    """Seen in review: 2 million Chinese characters took seconds inside the turn's
    transaction, estimating ever longer prefixes."""
    from conversations.pipeline import inputs

    measured = []
    real = inputs.estimate_tokens
    monkeypatch.setattr(
        inputs, "estimate_tokens", lambda text: measured.append(len(text)) or real(text)
    )
    text = "日志一行。\n" * 400_000

    kept, left_out = inputs.cut_text(text, 1_000)

    assert real(kept) <= 1_000 and left_out.total == 400_000
    assert max(measured) <= inputs.longest_fit(1_000)
