"""Documents through whole turns against the simulator over real HTTP (issue #22).

A PDF goes as a file (`input_file`) to a model that reads files, and as its text, framed
and cut to fit, to one that does not; a gateway that refuses the file gets the text once,
and the catalogue entry remembers; replays send the documents again; the quota hold
counts them before any request.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations.history import reads
from conversations.models import Attachment, Message, ModelChoice, Quota, RunningAnswer
from conversations.pipeline import fragments, turns
from conversations.pipeline.admission import Refused
from conversations.pipeline.plans import TurnOptions
from tests.support.chat import open_socket, receive_until, send
from tests.support.documents import document, text_document
from tests.support.turns import ask, finished

pytestmark = pytest.mark.django_db(transaction=True)

NO_TEXT = "No text could be extracted from this file (it may be a scanned document)."


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@sync_to_async
def set_model(upstream_id: str, **fields) -> None:
    ModelChoice.objects.filter(upstream_id=upstream_id).update(**fields)


@sync_to_async
def entry(upstream_id: str) -> ModelChoice:
    return ModelChoice.objects.get(upstream_id=upstream_id)


@sync_to_async
def bubble_html(message: Message) -> str:
    return fragments.message_html(reads.message_views([message])[0], staff=False)


def questions(body: dict) -> list[list[dict]]:
    """Return the content parts of each user message a request carried."""
    return [item["content"] for item in body["input"] if item.get("role") == "user"]


def kinds(parts: list[dict]) -> list[str]:
    return [part["type"] for part in parts]


# --- Files or text ---------------------------------------------------------------------


async def test_a_pdf_goes_as_a_file_to_a_model_that_reads_files(gateway, user):
    pdf = await sync_to_async(document)(user, "report.pdf", pages=["One", "Two", "Three"])

    _, answer = await ask(user, "Summarise it.", model="sim-chat", attachment_ids=(pdf.pk,))

    [sent] = gateway.requests.streamed()
    [parts] = questions(sent)
    assert kinds(parts) == ["input_text", "input_file"]
    assert parts[1]["filename"] == "report.pdf"
    assert parts[1]["file_data"].startswith("data:application/pdf;base64,JVBERi0")
    assert answer.text.startswith("I received 1 file: report.pdf (PDF, 3 pages")
    assert answer.input_tokens > 3 * 500  # the simulator bills 500 tokens a page


async def test_a_pdf_goes_as_framed_text_to_a_model_that_reads_no_files(gateway, user):
    pdf = await sync_to_async(document)(user, "report.pdf", pages=["Revenue grew.", "Outlook"])

    _, answer = await ask(user, "Summarise it.", model="sim-mini", attachment_ids=(pdf.pk,))

    [sent] = gateway.requests.streamed()
    [parts] = questions(sent)
    assert kinds(parts) == ["input_text", "input_text"]
    assert parts[1]["text"] == (
        "File: report.pdf (2 pages)\n```\nRevenue grew.\n\nOutlook\n```\nEnd of file: report.pdf"
    )
    assert answer.status == Message.Status.COMPLETE
    assert answer.notes == []


async def test_a_long_log_is_cut_to_the_models_budget_and_the_answer_says_so(gateway, user):
    await set_model("sim-mini", context_window=8_000)
    lines = "".join(f"{n:05d} GET /api/items/{n} 200 12ms\n" for n in range(10_000))
    log = await sync_to_async(text_document)(user, "app.log", lines)

    _, answer = await ask(user, "Any errors?", model="sim-mini", attachment_ids=(log.pk,))

    [sent] = gateway.requests.streamed()
    framed = questions(sent)[0][1]["text"]
    [note] = answer.notes
    assert note["code"] == "file_text_cut"
    assert (note["name"], note["total"], note["unit"]) == ("app.log", 10_000, "lines")
    kept = 10_000 - note["count"]
    assert framed.startswith("File: app.log\n```\n00000 GET")
    assert f"{kept - 1:05d} GET" in framed and f"\n{kept:05d} GET" not in framed
    assert framed.endswith(
        f"[Left out: the last {note['count']:,} of 10,000 lines of app.log to fit the "
        "model's context.]"
    )
    assert len(framed) < 4 * 4_000 + 200  # half the window, at ~4 characters a token
    html = await bubble_html(answer)
    assert (
        f"app.log was too long for the model: its last {note['count']:,} lines of 10,000 "
        "were left out."
    ) in html


async def test_a_scanned_pdf_sends_the_no_text_line(gateway, user):
    scan = await sync_to_async(document)(user, "scan.pdf", pages=["", ""], scanned=True)

    await ask(user, "What does it say?", model="sim-mini", attachment_ids=(scan.pk,))

    [sent] = gateway.requests.streamed()
    assert questions(sent)[0][1]["text"] == f"File: scan.pdf (2 pages)\n{NO_TEXT}"


async def test_a_text_file_goes_as_text_even_to_a_model_that_reads_files(gateway, user):
    notes = await sync_to_async(text_document)(
        user, "notes.md", "# Plan\nShip it.", content_type="text/markdown"
    )

    await ask(user, "Thoughts?", model="sim-chat", attachment_ids=(notes.pk,))

    [sent] = gateway.requests.streamed()
    assert kinds(questions(sent)[0]) == ["input_text", "input_text"]


async def test_documents_go_to_a_model_that_takes_no_images(gateway, user):
    await set_model("sim-mini", supports_images=False)
    pdf = await sync_to_async(document)(user)

    result, answer = await ask(user, "", model="sim-mini", attachment_ids=(pdf.pk,))

    assert answer.status == Message.Status.COMPLETE
    stored = await sync_to_async(Attachment.objects.get)(pk=pdf.pk)
    assert stored.message_id == result.plan.user_message_id


# --- A gateway that refuses files -----------------------------------------------------


async def test_a_refused_file_is_sent_again_as_text_once_and_remembered(gateway, user):
    # An admin marked a model as reading files; its gateway says otherwise.
    await set_model("sim-mini", supports_files=True)
    pdf = await sync_to_async(document)(user, "report.pdf", pages=["Revenue grew."])

    _, answer = await ask(user, "Summarise it.", model="sim-mini", attachment_ids=(pdf.pk,))

    first, second = gateway.requests.streamed()
    assert kinds(questions(first)[0]) == ["input_text", "input_file"]
    assert kinds(questions(second)[0]) == ["input_text", "input_text"]
    assert questions(second)[0][1]["text"].startswith("File: report.pdf (1 page)\n```\nRevenue")
    assert answer.status == Message.Status.COMPLETE
    assert answer.notes == [{"code": "files_as_text"}]
    assert "the text of the attached PDFs was sent instead" in await bubble_html(answer)
    rejected = (await entry("sim-mini")).unsupported_params
    assert list(rejected) == ["input_file"]
    assert "File inputs are not supported by model 'sim-mini'" in rejected["input_file"]["message"]

    # The next turn sends the text at once.
    other = await sync_to_async(document)(user, "other.pdf")
    before = len(gateway.requests.streamed())
    _, again = await ask(user, "And this?", model="sim-mini", attachment_ids=(other.pk,))
    [sent] = gateway.requests.streamed()[before:]
    assert kinds(questions(sent)[0]) == ["input_text", "input_text"]
    assert again.notes == []


async def test_a_refused_file_in_a_continued_conversation_is_sent_again_as_text(gateway, user):
    await set_model("sim-mini", supports_files=True)
    first, _ = await ask(user, "Hello", model="sim-mini")
    pdf = await sync_to_async(document)(user, "report.pdf")
    before = len(gateway.requests.streamed())

    _, answer = await ask(
        user,
        "Summarise it.",
        model="sim-mini",
        conversation_id=first.conversation.pk,
        attachment_ids=(pdf.pk,),
    )

    refused, resent = gateway.requests.streamed()[before:]
    assert refused["previous_response_id"] == resent["previous_response_id"]
    assert kinds(resent["input"][0]["content"]) == ["input_text", "input_text"]
    assert answer.status == Message.Status.COMPLETE


# --- Replays --------------------------------------------------------------------------


async def test_a_replayed_branch_sends_earlier_documents_again(gateway, user, replaying):
    pdf = await sync_to_async(document)(user, "report.pdf")
    first, _ = await ask(user, "Read this.", model="sim-chat", attachment_ids=(pdf.pk,))
    before = len(gateway.requests.streamed())

    await ask(user, "And the outlook?", model="sim-chat", conversation_id=first.conversation.pk)

    [sent] = gateway.requests.streamed()[before:]
    earlier, new = questions(sent)
    assert kinds(earlier) == ["input_text", "input_file"]
    assert earlier[1]["filename"] == "report.pdf"
    assert kinds(new) == ["input_text"]


async def test_a_replay_to_a_model_without_files_sends_the_text(gateway, user, replaying):
    pdf = await sync_to_async(document)(user, "report.pdf", pages=["Revenue grew."])
    first, _ = await ask(user, "Read this.", model="sim-chat", attachment_ids=(pdf.pk,))
    before = len(gateway.requests.streamed())

    await ask(user, "Summarise.", model="sim-mini", conversation_id=first.conversation.pk)

    [sent] = gateway.requests.streamed()[before:]
    earlier = questions(sent)[0]
    assert kinds(earlier) == ["input_text", "input_text"]
    assert earlier[1]["text"].startswith("File: report.pdf (1 page)")


async def test_regenerating_sends_the_questions_documents_again(gateway, user):
    pdf = await sync_to_async(document)(user, "report.pdf")
    _, answer = await ask(user, "Read this.", model="sim-chat", attachment_ids=(pdf.pk,))
    before = len(gateway.requests.streamed())

    plan = await turns.regenerate(user=user, message_id=answer.pk)
    again = await finished(plan.answer_id)

    [sent] = gateway.requests.streamed()[before:]
    assert kinds(questions(sent)[-1]) == ["input_text", "input_file"]
    assert again.text.startswith("I received 1 file: report.pdf")


async def test_an_edited_question_keeps_its_documents_and_sends_them(gateway, user):
    pdf = await sync_to_async(document)(user, "report.pdf")
    result, _ = await ask(user, "Read this.", model="sim-mini", attachment_ids=(pdf.pk,))
    before = len(gateway.requests.streamed())

    plan = await turns.edit(user=user, message_id=result.plan.user_message_id, text="Read it.")
    await finished(plan.answer_id)

    [sent] = gateway.requests.streamed()[before:]
    parts = questions(sent)[-1]
    assert parts[0]["text"] == "Read it."
    assert parts[1]["text"].startswith("File: report.pdf (2 pages)")
    kept = await sync_to_async(list)(
        Attachment.objects.filter(message_id=plan.user_message_id).values_list(
            "kind", "original_name", "pages", "extracted_text"
        )
    )
    assert kept == [("document", "report.pdf", 2, "Quarterly report\n\nRevenue grew.")]


# --- The quota hold -------------------------------------------------------------------


async def test_the_quota_hold_counts_the_files_before_the_request(gateway, user):
    pdf = await sync_to_async(document)(user, "report.pdf", token_estimate=5_000)

    result = await turns.send(
        user=user,
        conversation_id=None,
        text="Read this.",
        model_id=(await entry("sim-chat")).pk,
        options=TurnOptions(attachment_ids=(pdf.pk,)),
    )

    running = await sync_to_async(RunningAnswer.objects.get)(message_id=result.plan.answer_id)
    assert running.quota_hold["input_estimate"] > 5_000
    assert result.plan.input_estimate == running.quota_hold["input_estimate"]
    await finished(result.plan.answer_id)


async def test_a_follow_up_holds_for_the_files_the_gateway_still_reads_upstream(gateway, user):
    """Seen in review: continuing upstream, the follow-up sent no file and held 11
    tokens, while the gateway read (and billed) the 5,000-token PDF again."""
    pdf = await sync_to_async(document)(user, "report.pdf", token_estimate=5_000)
    first, _ = await ask(user, "Read this.", model="sim-chat", attachment_ids=(pdf.pk,))

    follow_up, _ = await ask(
        user, "And the outlook?", model="sim-chat", conversation_id=first.plan.conversation_id
    )

    assert follow_up.plan.previous_id  # it continued upstream, sending no file
    question = await sync_to_async(Message.objects.get)(pk=first.plan.user_message_id)
    assert question.attachment_tokens >= 5_000
    assert follow_up.plan.input_estimate > question.attachment_tokens


async def test_a_quota_too_small_for_the_file_refuses_before_any_request(gateway, user):
    await sync_to_async(Quota.objects.create)(user=user, tokens_per_day=20_000)
    pdf = await sync_to_async(document)(user, "big.pdf", token_estimate=50_000)

    with pytest.raises(Refused):
        await ask(user, "Read this.", model="sim-chat", attachment_ids=(pdf.pk,))

    assert gateway.requests.streamed() == []
    assert not await sync_to_async(Message.objects.exists)()
    # Without the file the same quota has room.
    _, answer = await ask(user, "Hello", model="sim-chat")
    assert answer.status == Message.Status.COMPLETE


async def test_a_file_cut_to_fit_counts_as_sent_not_whole(gateway, user):
    await set_model("sim-mini", context_window=8_000)
    lines = "".join(f"{n:05d} GET /api/items/{n} 200 12ms\n" for n in range(10_000))
    log = await sync_to_async(text_document)(user, "app.log", lines)  # ~90,000 tokens

    result, _ = await ask(user, "Any errors?", model="sim-mini", attachment_ids=(log.pk,))

    assert 3_900 < result.plan.input_estimate < 4_100  # the budget, half the window


# --- Whose documents ------------------------------------------------------------------


async def test_another_users_document_over_the_websocket_sends_nothing(gateway, user, other_user):
    theirs = await sync_to_async(document)(other_user, "secret.pdf")
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Summarise", attachments=[theirs.pk])
    await receive_until(socket, lambda frame: "no longer available" in frame)
    await socket.disconnect()

    assert gateway.requests.streamed() == []
    assert (await sync_to_async(Attachment.objects.get)(pk=theirs.pk)).message_id is None
    assert not await sync_to_async(Message.objects.exists)()
