"""Error mapping, user messages, and the API key never leaking into errors or logs."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from conversations.gateway import (
    AuthenticationError,
    BadRequestError,
    ErrorEvent,
    GatewayError,
    GatewayTimeoutError,
    ModelNotFoundError,
    NotFoundError,
    PreviousResponseNotFoundError,
    QuotaExhaustedError,
    RateLimitedError,
    ResponseFailed,
    ResponseFailedError,
    ResponseRequest,
    ResponsesClient,
    StreamBrokenError,
    Timeouts,
    UnavailableError,
    image_part,
)
from conversations.gateway.errors import error_for_code, error_from_http, parse_retry_after, redact
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
    assert message.endswith(".") and len(message) < 100 and "technical" not in message


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
