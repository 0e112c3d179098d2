"""The simulator's file input: acknowledged by file-reading models, refused by the others
with the 400 a gateway sends, on the Responses and Chat Completions endpoints."""

# Chinese prompts use full-width punctuation.
# ruff: noqa: RUF001

from __future__ import annotations

import base64

import httpx
import pytest

from conversations.gateway.classify import error_from_http
from conversations.gateway.errors import UnsupportedParameterError
from conversations.gateway.simulator import find_model
from conversations.gateway.simulator.files import FILE_PAGE_TOKENS
from conversations.gateway.simulator.tokens import count_tokens
from tests.support.pdf import text_pdf

PDF = text_pdf("Quarterly report", "Revenue grew.", "Outlook")


@pytest.fixture
async def http(simulator_server):
    headers = {"Authorization": f"Bearer {simulator_server.api_key}"}
    async with httpx.AsyncClient(base_url=simulator_server.base_url, headers=headers) as client:
        yield client


def data_url(data: bytes, mime_type: str = "application/pdf") -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode()}"


def with_file(model: str, text: str = "Summarise this.", **part) -> dict:
    part = {"type": "input_file", "filename": "report.pdf", "file_data": data_url(PDF), **part}
    content = [{"type": "input_text", "text": text}, part]
    return {"model": model, "input": [{"role": "user", "content": content}]}


async def test_file_reading_model_names_the_file_its_type_and_pages(http):
    response = await http.post("/responses", json=with_file("sim-chat"))

    text = response.json()["output"][0]["content"][0]["text"]
    assert text.startswith(f"I received 1 file: report.pdf (PDF, 3 pages, {len(PDF):,} bytes).")


async def test_file_is_billed_per_page(http):
    body = with_file("sim-chat")

    usage = (await http.post("/responses", json=body)).json()["usage"]
    counted = (await http.post("/responses/input_tokens", json=body)).json()

    assert usage["input_tokens"] == count_tokens("Summarise this.") + 3 * FILE_PAGE_TOKENS
    assert counted["input_tokens"] == usage["input_tokens"]


async def test_chinese_question_gets_the_file_acknowledged_in_chinese(http):
    response = await http.post("/responses", json=with_file("sim-reasoner", "总结一下"))

    text = response.json()["output"][-1]["content"][0]["text"]
    assert text.startswith("我收到了 1 个文件：report.pdf (PDF, 3 pages")


async def test_text_only_model_refuses_a_file_with_the_real_400(http):
    response = await http.post("/responses", json=with_file("sim-mini"))

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "File inputs are not supported by model 'sim-mini'.",
            "type": "invalid_request_error",
            "param": "input[0].content[1]",
            "code": "unsupported_value",
        }
    }


async def test_the_refusal_reads_as_a_refused_file_to_the_app(http):
    response = await http.post("/responses", json=with_file("sim-oss"))

    error = error_from_http(response.status_code, response.content, response.headers)
    assert isinstance(error, UnsupportedParameterError)
    assert error.unsupported_param == "input_file"


@pytest.mark.parametrize(
    ("part", "param", "reason"),
    [
        ({"file_data": data_url(b"hello", "application/zip")}, "file_data", "'application/zip'"),
        ({"file_data": "data:application/pdf;base64,@@@"}, "file_data", "invalid base64"),
        ({"file_data": data_url(b"hello")}, "file_data", "not a PDF file"),
        ({"filename": None}, "filename", "Missing required parameter"),
        ({"file_id": "file-abc"}, "file_id", "keeps no files"),
    ],
)
async def test_unusable_file_parts_are_the_real_400(http, part, param, reason):
    body = with_file("sim-chat", **part)

    response = await http.post("/responses", json=body)

    error = response.json()["error"]
    assert (response.status_code, error["param"]) == (400, f"input[0].content[1].{param}")
    assert reason in error["message"]


async def test_a_text_file_is_read_and_billed_as_text(http):
    part = {"filename": "notes.md", "file_data": data_url(b"# Notes\nShip it.", "text/markdown")}

    answer = (await http.post("/responses", json=with_file("sim-chat", **part))).json()

    assert answer["output"][0]["content"][0]["text"].startswith(
        "I received 1 file: notes.md (text/markdown, 16 bytes)."
    )
    assert answer["usage"]["input_tokens"] == count_tokens("Summarise this.") + count_tokens(
        "# Notes\nShip it."
    )


async def test_chat_file_part_reaches_a_file_reading_model(http):
    file = {"filename": "report.pdf", "file_data": data_url(PDF)}
    content = [{"type": "text", "text": "Summarise"}, {"type": "file", "file": file}]
    body = {"model": "sim-chat", "messages": [{"role": "user", "content": content}]}

    completion = (await http.post("/chat/completions", json=body)).json()

    assert completion["choices"][0]["message"]["content"].startswith(
        "I received 1 file: report.pdf (PDF, 3 pages"
    )


async def test_chat_file_part_is_refused_by_a_text_only_model(http):
    file = {"filename": "report.pdf", "file_data": data_url(PDF)}
    content = [{"type": "text", "text": "Summarise"}, {"type": "file", "file": file}]
    body = {"model": "sim-mini", "messages": [{"role": "user", "content": content}]}

    response = await http.post("/chat/completions", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Invalid content type. file is only supported by certain models."
    )


def test_only_the_chat_and_reasoner_models_read_files():
    readers = ("sim-chat", "sim-reasoner", "sim-mini", "sim-oss")

    assert [find_model(name).files for name in readers] == [True, True, False, False]
