"""Every simulator fault mode, over real HTTP, as the client reports it."""

from __future__ import annotations

import asyncio
import time

import pytest

from conversations.gateway.client import Backoff, ResponsesClient, Timeouts
from conversations.gateway.errors import (
    AuthenticationError,
    BadRequestError,
    GatewayTimeoutError,
    ModelNotFoundError,
    QuotaExhaustedError,
    RateLimitedError,
    ResponseFailedError,
    StreamBrokenError,
    UnavailableError,
)
from conversations.gateway.events import (
    ErrorEvent,
    ResponseCompleted,
    ResponseFailed,
    ResponseIncomplete,
)
from conversations.gateway.request import ResponseRequest
from tests.gateway.helpers import collect, make_client, streamed_text


def faulty(spec: str, text: str = "Tell me about tea.") -> ResponseRequest:
    return ResponseRequest(model=f"sim-chat+fault={spec}", input=text)


async def stream_error(
    gateway_client: ResponsesClient, request: ResponseRequest, **kwargs
) -> Exception:
    with pytest.raises(Exception) as caught:
        await collect(gateway_client, request, **kwargs)
    return caught.value


async def test_fault_400_is_bad_request_with_param(gateway_client):
    error = await stream_error(gateway_client, faulty("400"))
    assert isinstance(error, BadRequestError)
    assert error.param == "simulated_bad_parameter" and error.code == "unknown_parameter"


@pytest.mark.parametrize("spec", ["401", "403"])
async def test_fault_401_and_403_are_authentication_errors(gateway_client, spec):
    error = await stream_error(gateway_client, faulty(spec))
    assert isinstance(error, AuthenticationError) and error.status_code == int(spec)


async def test_fault_404_is_model_not_found(gateway_client):
    error = await stream_error(gateway_client, faulty("404"))
    assert isinstance(error, ModelNotFoundError) and error.code == "model_not_found"


async def test_unknown_model_is_model_not_found(gateway_client):
    error = await stream_error(gateway_client, ResponseRequest(model="gpt-unknown", input="Hi"))
    assert isinstance(error, ModelNotFoundError) and error.status_code == 404


async def test_fault_429_retries_then_raises_with_retry_after(gateway_client, simulator_server):
    spec = "429:0.02,tag:exhaust"
    error = await stream_error(gateway_client, faulty(spec))
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == pytest.approx(0.02)
    assert simulator_server.app.fault_requests[spec] == 3  # the first try and two retries


async def test_fault_429_once_succeeds_after_honouring_retry_after(gateway_client):
    started = time.monotonic()
    events = await collect(gateway_client, faulty("429:0.3,times:1,tag:once"))
    assert isinstance(events[-1], ResponseCompleted)
    assert time.monotonic() - started >= 0.3


async def test_fault_429_with_long_retry_after_is_not_waited_for(gateway_client, simulator_server):
    spec = "429:60,tag:long"
    error = await stream_error(gateway_client, faulty(spec))
    assert isinstance(error, RateLimitedError) and error.retry_after == 60
    assert simulator_server.app.fault_requests[spec] == 1


async def test_fault_quota_is_never_retried(gateway_client, simulator_server):
    spec = "quota,tag:never"
    error = await stream_error(gateway_client, faulty(spec))
    assert isinstance(error, QuotaExhaustedError)
    assert simulator_server.app.fault_requests[spec] == 1


async def test_fault_500_is_unavailable_and_not_retried(gateway_client, simulator_server):
    spec = "500,tag:once"
    error = await stream_error(gateway_client, faulty(spec))
    assert isinstance(error, UnavailableError) and error.status_code == 500
    assert simulator_server.app.fault_requests[spec] == 1


@pytest.mark.parametrize("status", ["502", "503", "504"])
async def test_transient_5xx_are_retried_until_success(gateway_client, simulator_server, status):
    spec = f"{status},times:2,tag:transient"
    events = await collect(gateway_client, faulty(spec))
    assert isinstance(events[-1], ResponseCompleted)
    assert simulator_server.app.fault_requests[spec] == 3


async def test_fault_502_html_body_is_unavailable(gateway_client):
    error = await stream_error(gateway_client, faulty("502,tag:html"))
    assert isinstance(error, UnavailableError) and error.status_code == 502


async def test_fault_504_is_gateway_timeout(gateway_client):
    error = await stream_error(gateway_client, faulty("504,tag:text"))
    assert isinstance(error, GatewayTimeoutError) and error.status_code == 504


async def test_fault_delay_holds_back_the_first_event(gateway_client):
    started = time.monotonic()
    stream = gateway_client.stream(faulty("delay:0.3"))
    await anext(stream)
    assert time.monotonic() - started >= 0.3
    await stream.aclose()


async def test_fault_slow_paces_the_stream(gateway_client):
    started = time.monotonic()
    events = await collect(gateway_client, faulty("slow:100", "Hello"))
    deltas = events[-1].response.usage.output_tokens
    assert time.monotonic() - started >= deltas / 100


async def test_pace_header_slows_one_request(gateway_client):
    started = time.monotonic()
    events = await collect(gateway_client, faulty("", "Hello"), headers={"X-Simulator-Pace": "100"})
    assert time.monotonic() - started >= events[-1].response.usage.output_tokens / 100


async def test_fault_failed_yields_response_failed_after_some_text(
    gateway_client, simulator_server
):
    spec = "failed,tag:single"
    events = await collect(gateway_client, faulty(spec))
    final = events[-1]
    assert isinstance(final, ResponseFailed)
    assert len(streamed_text(events)) > 0
    assert final.response.error.code == "server_error"
    assert isinstance(final.as_error(), ResponseFailedError)
    assert simulator_server.app.fault_requests[spec] == 1  # never retried after output began


async def test_fault_error_yields_nested_error_event(gateway_client):
    events = await collect(gateway_client, faulty("error"))
    final = events[-1]
    assert isinstance(final, ErrorEvent)
    assert (final.code, final.error_type, final.message) == (
        "too_many_requests",
        "too_many_requests",
        "Too Many Requests",
    )
    assert isinstance(final.as_error(), RateLimitedError)


async def test_fault_error_flat_yields_flat_error_event(gateway_client):
    events = await collect(gateway_client, faulty("error-flat"))
    final = events[-1]
    assert isinstance(final, ErrorEvent)
    assert final.code == "server_error" and final.error_type is None
    assert isinstance(final.as_error(), ResponseFailedError)


async def test_fault_incomplete_stops_halfway(gateway_client):
    complete = await collect(gateway_client, faulty(""))
    events = await collect(gateway_client, faulty("incomplete"))
    assert isinstance(events[-1], ResponseIncomplete)
    assert events[-1].response.incomplete_reason == "max_output_tokens"
    assert complete[-1].response.output_text.startswith(streamed_text(events))
    assert len(streamed_text(events)) < len(complete[-1].response.output_text)


async def test_fault_cut_raises_stream_broken_after_text(gateway_client):
    received = []
    with pytest.raises(StreamBrokenError):
        async for event in gateway_client.stream(faulty("cut")):
            received.append(event)
    assert len(streamed_text(received)) > 0


async def test_fault_malformed_raises_stream_broken(gateway_client):
    error = await stream_error(gateway_client, faulty("malformed"))
    assert isinstance(error, StreamBrokenError)
    assert "Malformed data line" in str(error)


async def test_fault_stall_obeys_read_timeout(simulator_server):
    async with make_client(simulator_server, timeouts=Timeouts(read=0.3)) as gateway_client:
        received = []
        with pytest.raises(GatewayTimeoutError):
            async for event in gateway_client.stream(faulty("stall")):
                received.append(event)
    assert len(streamed_text(received)) > 0


async def test_fault_hang_obeys_read_timeout_and_is_not_retried(simulator_server):
    spec = "hang,tag:timeout"
    async with make_client(simulator_server, timeouts=Timeouts(read=0.3)) as gateway_client:
        # Far longer than the read timeout: a client that ignored it would still be waiting.
        async with asyncio.timeout(10):
            error = await stream_error(gateway_client, faulty(spec))
    assert isinstance(error, GatewayTimeoutError)
    assert simulator_server.app.fault_requests[spec] == 1


async def test_fault_header_works_like_model_suffix(gateway_client):
    request = ResponseRequest(model="sim-chat", input="Hi")
    error = await stream_error(gateway_client, request, headers={"X-Simulator-Fault": "quota"})
    assert isinstance(error, QuotaExhaustedError)


async def test_fault_header_and_suffix_combine(gateway_client):
    started = time.monotonic()
    request = faulty("delay:0.2")
    events = await collect(gateway_client, request, headers={"X-Simulator-Fault": "failed"})
    assert isinstance(events[-1], ResponseFailed)
    assert time.monotonic() - started >= 0.2


async def test_unknown_fault_is_bad_request_naming_it(gateway_client):
    error = await stream_error(gateway_client, faulty("explode"))
    assert isinstance(error, BadRequestError)
    assert error.param == "model" and "explode" in str(error)


async def test_non_streaming_failed_fault_returns_failed_response(gateway_client):
    response = await gateway_client.create(faulty("failed"))
    assert response.status == "failed" and response.error.code == "server_error"


async def test_non_streaming_cut_fault_is_server_error(gateway_client):
    with pytest.raises(UnavailableError):
        await gateway_client.create(faulty("cut"))


async def test_connection_refused_is_unavailable_after_retries():
    backoff = Backoff(initial=0.01, maximum=0.02)
    async with ResponsesClient("http://127.0.0.1:9/v1", "sk-x", backoff=backoff) as gateway_client:
        error = await stream_error(gateway_client, ResponseRequest(model="sim-chat", input="Hi"))
    assert isinstance(error, UnavailableError)
    assert "connect" in str(error).lower()
