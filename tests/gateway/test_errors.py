"""Error mapping, user messages, and the API key never leaking into errors or logs."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from conversations.gateway.classify import error_for_code, error_from_http
from conversations.gateway.client import ResponsesClient, Timeouts
from conversations.gateway.errors import (
    AuthenticationError,
    BadRequestError,
    ContentRefusedError,
    ContextTooLongError,
    GatewayError,
    GatewayTimeoutError,
    ModelNotFoundError,
    NoModelListError,
    NotFoundError,
    PreviousResponseNotFoundError,
    QuotaExhaustedError,
    RateLimitedError,
    ResponseFailedError,
    StreamBrokenError,
    UnanswerableToolCallError,
    UnavailableError,
    UnsupportedParameterError,
    parse_retry_after,
    redact,
)
from conversations.gateway.events import ErrorEvent, ResponseFailed
from conversations.gateway.request import ResponseRequest, image_part
from conversations.rendering.errortext import BUSY, STORED_ERRORS, UNSUPPORTED_OPTION
from tests.gateway.helpers import make_client


def body(
    message: str = "m",
    code: str | None = None,
    error_type: str = "invalid_request_error",
    param=None,
) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    ).encode()


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (401, body(code="invalid_api_key"), AuthenticationError),
        (403, body(), AuthenticationError),
        (429, body(code="rate_limit_exceeded", error_type="requests"), RateLimitedError),
        (
            429,
            body(code="insufficient_quota", error_type="insufficient_quota"),
            QuotaExhaustedError,
        ),
        (400, body(code="previous_response_not_found"), PreviousResponseNotFoundError),
        (404, body(code="model_not_found"), ModelNotFoundError),
        (404, body(), NotFoundError),
        (400, body(param="tools[0].name"), BadRequestError),
        (500, body(error_type="server_error"), UnavailableError),
        (502, b"<html>502 Bad Gateway</html>", UnavailableError),
        (503, b"", UnavailableError),
        (504, b"upstream request timeout", GatewayTimeoutError),
    ],
)
def test_http_errors_map_to_classes(status, payload, expected):
    error = error_from_http(status, payload, {})
    assert type(error) is expected and error.status_code == status


def test_bad_request_keeps_param_and_code():
    error = error_from_http(
        400, body("Missing 'tools[0].name'.", "missing", param="tools[0].name"), {}
    )
    assert (error.param, error.code, str(error)) == (
        "tools[0].name",
        "missing",
        "Missing 'tools[0].name'.",
    )


def test_retry_after_ms_wins_over_retry_after():
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25


def test_retry_after_accepts_seconds_and_http_dates():
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert 25 < parse_retry_after({"retry-after": soon}) <= 30


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_retry_after_ignores_nonsense(value):
    assert parse_retry_after({"retry-after": value}) is None


def test_rate_limited_user_message_says_when_to_retry():
    assert RateLimitedError("x", retry_after=1.2).user_message.endswith("try again in 2 seconds.")
    assert RateLimitedError("x", retry_after=0.5).user_message.endswith("try again in 1 second.")
    assert RateLimitedError("x").user_message.endswith("try again in a moment.")


@pytest.mark.parametrize(
    "cls",
    [
        AuthenticationError,
        QuotaExhaustedError,
        BadRequestError,
        UnsupportedParameterError,
        ContextTooLongError,
        ContentRefusedError,
        NoModelListError,
        UnanswerableToolCallError,
        PreviousResponseNotFoundError,
        ModelNotFoundError,
        NotFoundError,
        UnavailableError,
        GatewayTimeoutError,
        StreamBrokenError,
        ResponseFailedError,
        GatewayError,
    ],
)
def test_every_error_has_a_short_user_message(cls):
    message = cls("technical detail").user_message
    assert message.endswith(".") and len(message) < 120 and "technical" not in message


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("rate_limit_exceeded", RateLimitedError),
        ("too_many_requests", RateLimitedError),
        ("insufficient_quota", QuotaExhaustedError),
        ("credit_balance_exhausted", QuotaExhaustedError),
        ("server_error", ResponseFailedError),
        (None, ResponseFailedError),
    ],
)
def test_stream_error_codes_map_to_classes(code, expected):
    assert type(error_for_code(code, "m")) is expected


def test_redact_hides_the_secret_and_key_shaped_text():
    assert (
        redact("bad key sk-abc123 and SECRETVALUE", "SECRETVALUE")
        == "bad key [redacted] and [redacted]"
    )


# The key must not leak, whatever goes wrong.

SECRET = "sk-test-SECRET-for-a-careless-gateway"
STREAM_FAULTS = ["failed", "error", "error-flat", "cut", "malformed", "stall"]
HTTP_FAULTS = ["400", "401", "403", "404", "429:0.01", "quota", "500", "502", "503", "504", "hang"]


def assert_no_secret(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text
        assert "SECRET" not in text  # not even a fragment of it


def describe(error: BaseException) -> list[str]:
    """Return str and repr of an error and of everything it was chained from."""
    texts = []
    while error is not None:
        texts += [str(error), repr(error), getattr(error, "user_message", "")]
        error = error.__cause__ or error.__context__
    return texts


async def provoke_every_error(client: ResponsesClient) -> list[BaseException]:
    problems: list[BaseException] = []
    requests = [
        ResponseRequest(model=f"sim-chat+fault={spec}", input="Hi")
        for spec in HTTP_FAULTS + STREAM_FAULTS
    ]
    requests += [
        ResponseRequest(model="sim-chat", input="Hi", previous_response_id="resp_missing"),
        ResponseRequest(
            model="sim-chat", input=[{"role": "user", "content": [image_part("image/png", b"no")]}]
        ),
        ResponseRequest(model="no-such-model", input="Hi"),
    ]
    for request in requests:
        try:
            async for event in client.stream(request):
                if isinstance(event, ErrorEvent | ResponseFailed):
                    problems.append(event.as_error())
        except GatewayError as error:
            problems.append(error)
    return problems


async def test_api_key_never_appears_in_errors_or_logs(simulator_server, caplog):
    key = simulator_server.api_key
    assert key.startswith("sk-test-SECRET")
    caplog.set_level(logging.DEBUG)
    async with make_client(simulator_server, timeouts=Timeouts(read=0.3)) as client:
        problems = await provoke_every_error(client)
        assert_no_secret(key, repr(client))
    assert len(problems) == len(HTTP_FAULTS) + len(STREAM_FAULTS) + 3
    for problem in problems:
        assert_no_secret(key, *describe(problem))
    assert_no_secret(key, caplog.text, *(repr(record.args) for record in caplog.records))


async def test_wrong_key_error_does_not_leak_it(simulator_server, caplog):
    caplog.set_level(logging.DEBUG)
    async with make_client(simulator_server, api_key="sk-test-SECRET-wrong-key-value") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.create(ResponseRequest(model="sim-chat", input="Hi"))
    for text in [*describe(caught.value), caplog.text]:
        assert "sk-test-SECRET-wrong-key-value" not in text and "SECRET" not in text


async def test_gateway_echoing_the_full_key_is_redacted(caplog):
    """A careless gateway repeats the key in error bodies and stream errors."""
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        if request.url.path.endswith("/responses/resp_1"):
            return httpx.Response(
                401, json={"error": {"message": f"Key {key} is invalid", "param": key}}
            )
        frame = json.dumps(
            {"type": "error", "message": f"upstream rejected {key}", "code": "server_error"}
        )
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, text=f"data: {frame}\n\n"
        )

    async with ResponsesClient(
        "https://gateway.test/v1", SECRET, transport=httpx.MockTransport(handler)
    ) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.retrieve("resp_1")
        events = [event async for event in client.stream(ResponseRequest(model="m", input="Hi"))]
    assert_no_secret(SECRET, *describe(caught.value), caplog.text)
    assert SECRET not in repr(events[-1]) + repr(events[-1].as_error())


# A key in any format (not only "sk-...") stays out of errors and logs; the fields stay in.

OTHER_KEY = "gw-KEY-1234567890abcdef"


def echoing_gateway(request: httpx.Request) -> httpx.Response:
    """Answer like a careless relay that repeats the caller's key everywhere."""
    key = request.headers["authorization"].removeprefix("Bearer ")
    if request.url.path.endswith("/responses/resp_1"):
        return httpx.Response(
            400,
            json={
                "error": {
                    "message": f"litellm.BadRequestError: key {key} cannot use this",
                    "type": "invalid_request_error",
                    "param": key,
                    "code": "400",
                }
            },
        )
    escaped = key.replace("-", "\\u002d")  # the same key, JSON-escaped differently
    frame = (
        '{"type": "error", "error": {"type": "server_error", "code": 500, '
        f'"param": "tools", "message": "upstream rejected {escaped}"}}}}'
    )
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, text=f"data: {frame}\n\n"
    )


async def test_key_in_any_format_never_reaches_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    async with ResponsesClient(
        "https://gateway.test/v1", OTHER_KEY, transport=httpx.MockTransport(echoing_gateway)
    ) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.retrieve("resp_1")
        events = [event async for event in client.stream(ResponseRequest(model="m", input="Hi"))]
    stream_error = events[-1].as_error(secret=OTHER_KEY)
    texts = [*describe(caught.value), caught.value.detail_for_staff(), caplog.text]
    texts += [repr(events[-1]), *describe(stream_error), stream_error.detail_for_staff()]
    assert all(OTHER_KEY not in text and "1234567890abcdef" not in text for text in texts)
    assert isinstance(stream_error, UnavailableError) and stream_error.code == "500"


async def test_every_failed_call_is_logged_once_with_what_the_gateway_said(caplog):
    caplog.set_level(logging.WARNING, logger="conversations.gateway.client")
    async with ResponsesClient(
        "https://gateway.test/v1", OTHER_KEY, transport=httpx.MockTransport(echoing_gateway)
    ) as client:
        with pytest.raises(BadRequestError):
            await client.retrieve("resp_1")
        [event async for event in client.stream(ResponseRequest(model="m", input="Hi"))]
    http_line, stream_line = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert "HTTP 400 · invalid_request_error · code 400 · param [redacted]" in http_line
    assert "litellm.BadRequestError" in http_line
    assert "in response · server_error · code 500 · param tools · upstream rejected" in stream_line
    assert "Authorization" not in caplog.text and "Bearer" not in caplog.text


async def test_masked_echo_of_a_key_in_another_format_is_redacted():
    error = error_from_http(401, body("Incorrect API key provided: gw-KEY-12***cdef."), {})
    assert "gw-KEY" not in error.gateway_message and "cdef" not in error.gateway_message


async def test_broken_and_cut_streams_are_logged(simulator_server, caplog):
    caplog.set_level(logging.WARNING, logger="conversations.gateway.client")
    async with make_client(simulator_server, timeouts=Timeouts(read=0.3)) as client:
        for spec in ("cut", "malformed", "stall"):
            with pytest.raises((StreamBrokenError, GatewayTimeoutError)):
                async for _ in client.stream(
                    ResponseRequest(model=f"sim-chat+fault={spec}", input="Hi")
                ):
                    pass
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "StreamBrokenError" in lines[0] and "without a terminal event" in lines[0]
    assert "Malformed data line" in lines[1] and "GatewayTimeoutError" in lines[2]


async def test_http_failure_is_logged_when_the_client_gives_up(simulator_server, caplog):
    caplog.set_level(logging.WARNING, logger="conversations.gateway.client")
    async with make_client(simulator_server, max_retries=1) as client:
        with pytest.raises(UnavailableError):
            await client.create(ResponseRequest(model="sim-chat+fault=503,tag:giveup", input="Hi"))
    retry, final = [r.getMessage() for r in caplog.records]
    assert retry.startswith("Gateway call failed with UnavailableError (status 503); retry 1")
    assert final.startswith("Gateway call failed (UnavailableError): HTTP 503 ·")
    assert "overloaded" in final


async def test_no_channel_for_the_model_is_not_retried():
    """new-api answers 503 for a model it has no channel for; waiting cannot fix that."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            503,
            json={
                "error": {
                    "message": "No available channel for model gpt-5 under group default",
                    "type": "new_api_error",
                    "code": "model_not_found",
                }
            },
        )

    transport = httpx.MockTransport(handler)
    async with ResponsesClient("https://gateway.test/v1", "k", transport=transport) as client:
        with pytest.raises(ModelNotFoundError):
            await client.create(ResponseRequest(model="gpt-5", input="Hi"))
    assert len(calls) == 1


async def test_failed_response_from_create_is_logged(gateway_client, caplog):
    caplog.set_level(logging.WARNING, logger="conversations.gateway.client")
    response = await gateway_client.create(
        ResponseRequest(model="sim-chat+fault=failed", input="Hi")
    )
    assert response.status == "failed"
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("Gateway call failed (ResponseFailedError): in response ·")
    assert "code server_error" in line


def every_error_class(cls: type[GatewayError] = GatewayError) -> list[type[GatewayError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in every_error_class(child))]


@pytest.mark.parametrize("cls", every_error_class())
def test_every_user_message_can_be_shown_translated(cls):
    """Each sentence an answer may store is in the catalogue list, or matched with its value."""
    messages = {cls("d").user_message}
    if cls is UnsupportedParameterError:
        messages.add(cls("d", unsupported_param="reasoning.summary").user_message)
    if cls is RateLimitedError:
        messages.add(cls("d", retry_after=3).user_message)
    for message in messages:
        assert message in STORED_ERRORS or any(
            pattern.fullmatch(message) for pattern in (BUSY, UNSUPPORTED_OPTION)
        )
