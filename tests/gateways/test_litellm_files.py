"""PDFs through LiteLLM's proxy (1.108), a real third-party gateway, to the simulator.

What LiteLLM does with an `input_file` part on `/v1/responses`, measured here:

- bridging to a chat backend (`custom_openai/`), it becomes the Chat Completions file
  part `{"type": "file", "file": {"file_data": ..., "filename": ...}}`, name and data
  kept; a backend model that reads no files answers 400, which LiteLLM passes on as
  `litellm.BadRequestError: Custom_openaiException - <the backend's words>`, code "400";
- forwarding to a Responses backend (`openai/`), the part goes unchanged; a refusal comes
  back with the backend's error body as JSON inside LiteLLM's message.

Either way the app sends the PDF as a file to a model marked as reading files, and when
the gateway refuses it, sends the text once and records it on the catalogue entry.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Message, ModelChoice
from conversations.pipeline import turns
from conversations.pipeline.plans import TurnOptions
from tests.support.documents import document
from tests.support.litellm import TEST_TIMEOUT
from tests.support.turns import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(TEST_TIMEOUT)]


@pytest.fixture
def via_litellm(litellm_gateway, settings, transactional_db, tmp_path):
    """Point the app at the LiteLLM proxy; its models are marked as reading files."""
    settings.OPENAI_API_KEY = litellm_gateway.api_key
    settings.OPENAI_BASE_URL = litellm_gateway.base_url
    settings.GATEWAY_MAX_RETRIES = 0
    settings.GATEWAY_OPENAI_OPTIONS = None  # judged from the host: not OpenAI
    settings.MEDIA_ROOT = tmp_path / "media"
    for name in (
        litellm_gateway.chat_model,
        litellm_gateway.text_model,
        litellm_gateway.forwarded_model,
        litellm_gateway.forwarded_text_model,
    ):
        ModelChoice.objects.create(upstream_id=name, label=name, supports_files=True)
    return litellm_gateway


async def ask_with_pdf(user, model: str) -> Message:
    pdf = await sync_to_async(document)(user, "report.pdf", pages=["Revenue grew.", "Outlook"])
    result = await turns.send(
        user=user,
        conversation_id=None,
        text="Summarise it.",
        model_id=(await sync_to_async(ModelChoice.objects.get)(upstream_id=model)).pk,
        options=TurnOptions(attachment_ids=(pdf.pk,)),
    )
    return await finished(result.plan.answer_id, timeout=30)


def user_parts(request: dict) -> list[dict]:
    """Return the content parts of the last user message of a backend request."""
    messages = request.get("messages") or request.get("input")
    return [m for m in messages if m.get("role") == "user"][-1]["content"]


def streamed(gateway, path: str) -> list[dict]:
    return [body for body in gateway.backend_requests(path) if body.get("stream")]


async def test_a_bridging_gateway_passes_the_pdf_on_as_a_chat_file_part(via_litellm, user):
    before = len(streamed(via_litellm, "/v1/chat/completions"))

    answer = await ask_with_pdf(user, via_litellm.chat_model)

    [request] = streamed(via_litellm, "/v1/chat/completions")[before:]
    _text, file = user_parts(request)
    assert file["type"] == "file"
    assert file["file"]["filename"] == "report.pdf"
    assert file["file"]["file_data"].startswith("data:application/pdf;base64,JVBERi0")
    assert answer.status == Message.Status.COMPLETE
    assert answer.text.startswith("I received 1 file: report.pdf (PDF, 2 pages")


async def test_a_forwarding_gateway_passes_the_input_file_part_unchanged(via_litellm, user):
    before = len(streamed(via_litellm, "/v1/responses"))

    answer = await ask_with_pdf(user, via_litellm.forwarded_model)

    [request] = streamed(via_litellm, "/v1/responses")[before:]
    file = user_parts(request)[1]
    assert (file["type"], file["filename"]) == ("input_file", "report.pdf")
    assert answer.text.startswith("I received 1 file: report.pdf (PDF, 2 pages")


@pytest.mark.parametrize(
    ("model", "path", "said"),
    [
        ("text_model", "/v1/chat/completions", "file is only supported by certain models"),
        ("forwarded_text_model", "/v1/responses", "File inputs are not supported"),
    ],
)
async def test_a_file_the_backend_refuses_goes_again_as_text(via_litellm, user, model, path, said):
    name = getattr(via_litellm, model)
    before = len(streamed(via_litellm, path))

    answer = await ask_with_pdf(user, name)

    refused, resent = streamed(via_litellm, path)[before:]
    assert "file" in user_parts(refused)[1]["type"]
    framed = user_parts(resent)[1]
    assert framed["text"].startswith("File: report.pdf (2 pages)\n```\nRevenue grew.")
    assert answer.status == Message.Status.COMPLETE
    assert answer.notes == [{"code": "files_as_text"}]
    learned = await sync_to_async(ModelChoice.objects.get)(upstream_id=name)
    assert said in learned.unsupported_params["input_file"]["message"]
