"""Real error bodies of OpenAI, LiteLLM, Azure OpenAI and one-api/new-api, classified.

Each row is a reply a gateway really sends (from the reference notes, the gateways'
sources and issue reports), so the class, the user message and what staff see follow what
the gateway meant, not only its status.
"""

from __future__ import annotations

import json

import pytest

from conversations.gateway.classify import classify, error_for_code, error_from_http
from conversations.gateway.errors import (
    AuthenticationError,
    BadRequestError,
    ContentRefusedError,
    ContextTooLongError,
    GatewayTimeoutError,
    ModelNotFoundError,
    NotFoundError,
    PreviousResponseNotFoundError,
    QuotaExhaustedError,
    RateLimitedError,
    ResponseFailedError,
    UnavailableError,
    UnsupportedParameterError,
)
from conversations.gateway.events import ErrorEvent
from conversations.gateway.sse import EventStreamParser


def error_body(message: str, error_type=None, code=None, param=None, **extra) -> bytes:
    inner = {"message": message, "type": error_type, "param": param, "code": code, **extra}
    return json.dumps({"error": inner}).encode()


LITELLM_UNSUPPORTED = (
    "litellm.UnsupportedParamsError: custom_openai does not support parameters: "
    "['reasoning_effort'], for model=sim-chat. To drop these, set `litellm.drop_params=True` "
    "or for proxy:\n\n`litellm_settings:\n drop_params: true`\n"
)
AZURE_FILTERED = error_body(
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry.",
    code="content_filter",
    param="prompt",
    status=400,
    innererror={
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
    },
)

HTTP_CASES = [
    # LiteLLM (code is the status as a string; the class is in the message)
    (
        400,
        error_body(LITELLM_UNSUPPORTED, "invalid_request_error", "400"),
        UnsupportedParameterError,
    ),
    (
        400,
        error_body(
            "litellm.BadRequestError: Invalid model name passed in model=sim-chat. Call "
            "`/v1/models` to view available models for your key.",
            "invalid_request_error",
            "400",
        ),
        ModelNotFoundError,
    ),
    (
        400,
        error_body(
            "litellm.ContextWindowExceededError: litellm.BadRequestError: This model's maximum "
            "context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
            None,
            "400",
        ),
        ContextTooLongError,
    ),
    (
        400,
        error_body(
            "litellm.ContentPolicyViolationError: litellm.ContentPolicyViolationError: "
            "AzureException - The response was filtered.",
            None,
            "400",
        ),
        ContentRefusedError,
    ),
    (
        429,
        error_body(
            "litellm.RateLimitError: RateLimitError: OpenAIException - slow down", None, "429"
        ),
        RateLimitedError,
    ),
    (400, error_body("No connected db.", "no_db_connection", "400"), AuthenticationError),
    (
        401,
        error_body("Authentication Error, Invalid proxy server token passed.", "auth_error", "401"),
        AuthenticationError,
    ),
    # OpenAI
    (
        400,
        error_body(
            "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
            "invalid_request_error",
            "unsupported_parameter",
            "reasoning.effort",
        ),
        UnsupportedParameterError,
    ),
    (
        404,
        error_body(
            "The model `gpt-9` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        ModelNotFoundError,
    ),
    (
        400,
        error_body(
            "Your input exceeds the context window of this model.",
            "invalid_request_error",
            "context_length_exceeded",
            "input",
        ),
        ContextTooLongError,
    ),
    (
        400,
        error_body(
            "Invalid prompt: your prompt was flagged as potentially violating our usage policy.",
            "invalid_request_error",
            "invalid_prompt",
        ),
        ContentRefusedError,
    ),
    (
        400,
        error_body(
            "Previous response with id 'resp_abc' not found.",
            "invalid_request_error",
            "previous_response_not_found",
            "previous_response_id",
        ),
        PreviousResponseNotFoundError,
    ),
    (
        401,
        error_body(
            "Incorrect API key provided: gw-K***9f.", "invalid_request_error", "invalid_api_key"
        ),
        AuthenticationError,
    ),
    # Azure OpenAI
    (
        404,
        json.dumps(
            {
                "error": {
                    "code": "DeploymentNotFound",
                    "message": "The API deployment for this resource does not exist. If you "
                    "created the deployment within the last 5 minutes, please wait a moment "
                    "and try again.",
                }
            }
        ).encode(),
        ModelNotFoundError,
    ),
    (400, AZURE_FILTERED, ContentRefusedError),
    (
        400,
        error_body("Unrecognized request argument supplied: store", "invalid_request_error"),
        UnsupportedParameterError,
    ),
    # one-api / new-api: a missing channel is a 503 with a model code, not an outage
    (
        503,
        error_body(
            "No available channel for model gpt-5 under group default (distributor)",
            "new_api_error",
            "model_not_found",
        ),
        ModelNotFoundError,
    ),
    (
        503,
        error_body("当前分组 default 下对于模型 gpt-5 无可用渠道", "one_api_error", ""),
        ModelNotFoundError,
    ),
    (
        403,
        error_body("用户额度不足, 剩余额度: $0.00", "new_api_error", "insufficient_user_quota"),
        QuotaExhaustedError,
    ),
    (401, error_body("无效的令牌", "one_api_error", ""), AuthenticationError),
    # Status alone
    (404, error_body("Invalid URL (GET /v1/nothing)", "invalid_request_error", ""), NotFoundError),
    (400, error_body("Something odd.", "invalid_request_error"), BadRequestError),
    (502, b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>", UnavailableError),
    (504, b"upstream request timeout", GatewayTimeoutError),
]


@pytest.mark.parametrize(("status", "payload", "expected"), HTTP_CASES)
def test_real_gateway_replies_classify_by_meaning(status, payload, expected):
    assert type(error_from_http(status, payload, {})) is expected


@pytest.mark.parametrize(
    ("message", "param", "expected"),
    [
        (LITELLM_UNSUPPORTED, None, "reasoning"),
        (
            "Unsupported parameter: 'reasoning.effort' is not supported.",
            "reasoning.effort",
            "reasoning",
        ),
        ("Invalid value: 'detailed'.", "reasoning.summary", "reasoning.summary"),
        ("Unrecognized request argument supplied: store", None, "store"),
        ("Unrecognized request arguments supplied: include, store", None, "include"),
        ("Unknown parameter: 'stream_options.include_obfuscation'.", None, "stream_options"),
        (
            "Hosted tool 'web_search_preview' is not supported with gpt-4.1-nano.",
            "tools",
            "tools.web_search",
        ),
        (
            "custom_openai does not support parameters: ['web_search_options']",
            None,
            "tools.web_search",
        ),
        ("does not support parameters: ['tools', 'tool_choice']", None, "tools"),
        ("Unsupported parameter: 'max_output_tokens'.", None, "max_output_tokens"),
        ("Unknown parameter: 'instructions'.", None, "instructions"),
        ("Unknown parameter: 'simulated_bad_parameter'.", "simulated_bad_parameter", None),
    ],
)
def test_unsupported_parameter_names_the_key_the_app_sent(message, param, expected):
    error = classify(status=400, code="unsupported_parameter", param=param, message=message)
    assert isinstance(error, UnsupportedParameterError) and error.unsupported_param == expected


def test_unsupported_parameter_message_names_the_option():
    error = error_from_http(400, error_body(LITELLM_UNSUPPORTED, None, "400"), {})
    assert "(reasoning)" in error.user_message


def test_staff_detail_is_one_line_with_everything_the_gateway_said():
    error = error_from_http(
        400, error_body(LITELLM_UNSUPPORTED, "invalid_request_error", "400"), {}
    )
    assert error.detail_for_staff().startswith(
        "HTTP 400 · invalid_request_error · code 400 · param \N{EN DASH} · "
        "litellm.UnsupportedParamsError:"
    )
    assert "\n" not in error.detail_for_staff()


def test_azure_inner_code_and_fields_are_kept():
    error = error_from_http(400, AZURE_FILTERED, {})
    assert (error.code, error.param, error.status_code) == ("content_filter", "prompt", 400)
    assert "content management policy" in error.gateway_message


def test_html_error_page_becomes_short_text():
    page = b"<html><head><style>h1{}</style></head><body><h1>502 Bad Gateway</h1>" + b"x" * 500
    error = error_from_http(502, page, {"content-type": "text/html"})
    assert error.gateway_message.startswith("502 Bad Gateway")
    assert "<" not in error.detail_for_staff() and len(error.gateway_message) <= 200


def test_gateway_message_is_kept_up_to_a_thousand_characters():
    error = error_from_http(400, error_body("y" * 5000, code="400"), {})
    assert len(error.gateway_message) == 1000


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("400", BadRequestError),
        ("429", RateLimitedError),
        (429, RateLimitedError),
        ("500", UnavailableError),
        (503, UnavailableError),
        ("server_error", ResponseFailedError),
        ("context_length_exceeded", ContextTooLongError),
        ("model_not_found", ModelNotFoundError),
    ],
)
def test_stream_codes_classify_like_the_http_status(code, expected):
    assert type(error_for_code(code, "m")) is expected


def test_numeric_code_in_an_error_event_is_text():
    event = EventStreamParser().feed(
        "", json.dumps({"type": "error", "error": {"code": 429, "message": "slow down"}})
    )
    assert isinstance(event, ErrorEvent) and event.code == "429"
    assert isinstance(event.as_error(), RateLimitedError)


def test_numeric_code_in_a_failed_response_is_a_rate_limit():
    """A number where `response.error.code` should be text used to break the stream."""
    failed = EventStreamParser().feed(
        "",
        json.dumps(
            {
                "type": "response.failed",
                "response": {
                    "id": "r",
                    "status": "failed",
                    "error": {"code": 429, "message": "busy"},
                },
            }
        ),
    )
    error = failed.as_error()
    assert isinstance(error, RateLimitedError) and error.code == "429"
    dash = "\N{EN DASH}"
    assert error.detail_for_staff() == f"in response · {dash} · code 429 · param {dash} · busy"


def test_litellm_context_error_inside_a_stream_is_context_too_long():
    failed = EventStreamParser().feed(
        "",
        json.dumps(
            {
                "type": "response.failed",
                "response": {
                    "status": "failed",
                    "error": {
                        "code": "400",
                        "message": "litellm.ContextWindowExceededError: prompt is too long",
                    },
                },
            }
        ),
    )
    assert isinstance(failed.as_error(), ContextTooLongError)


# A file part a model or its gateway will not read: what LiteLLM 1.108 returned, bridging
# to a chat backend and forwarding to a Responses backend (tests/gateways/), and a
# relay that lists the part types it takes.
FILE_REFUSALS = [
    error_body(
        "File inputs are not supported by model 'sim-mini'.",
        "invalid_request_error",
        "unsupported_value",
        "input[0].content[1]",
    ),
    error_body(
        "litellm.BadRequestError: Custom_openaiException - Invalid content type. file is only "
        "supported by certain models.\n\nLiteLLM: model group 'bridged-mini' failed with the "
        "error above. No fallback was attempted.",
        "invalid_request_error",
        "400",
        "messages[0].content[1]",
    ),
    error_body(
        'litellm.BadRequestError: OpenAIException - {"error": {"message": "File inputs are not '
        'supported by model \'sim-mini\'.", "type": "invalid_request_error", "param": '
        '"input[0].content[1]", "code": "unsupported_value"}}',
        "invalid_request_error",
        "400",
    ),
    error_body(
        "Invalid value: file. Supported values are: 'text','image_url','video_url' and 'video'.",
        "invalid_request_error",
    ),
]


@pytest.mark.parametrize("payload", FILE_REFUSALS)
def test_a_refused_file_names_input_file(payload):
    error = error_from_http(400, payload, {})

    assert isinstance(error, UnsupportedParameterError)
    assert error.unsupported_param == "input_file"


def test_a_broken_file_is_a_bad_request_not_a_refused_file():
    payload = error_body(
        "Invalid file data: 'input[0].content[1].file_data'. Expected a base64-encoded data URL "
        "with an application/pdf MIME type (e.g. 'data:application/pdf;base64,SGVsbG8='), but "
        "got invalid base64 data.",
        "invalid_request_error",
        "invalid_value",
        "input[0].content[1].file_data",
    )

    assert type(error_from_http(400, payload, {})) is BadRequestError


def test_file_search_tool_refusal_is_not_a_refused_file():
    error = classify(
        status=400,
        code="unsupported_value",
        param="tools[0]",
        message="Tool 'file_search' is not supported with model 'sim-mini'.",
    )

    assert error.unsupported_param != "input_file"
