"""The simulator's stateless-relay mode: a gateway that bridges to chat completions.

It behaves as LiteLLM's proxy does without its database (tests/gateways/): it forgets
`previous_response_id`, echoes a different one, writes long ids and string error codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from conversations.gateway.events import ResponseCompleted
from conversations.gateway.request import ResponseRequest
from conversations.gateway.simulator import Simulator
from tests.gateway.helpers import collect, make_client, streamed_text
from tests.support.simulator import SIMULATOR_KEY, RunningSimulator, serve

RELAY = "sim-chat+fault=relay"


@pytest.fixture(scope="module")
def relay_server() -> Iterator[RunningSimulator]:
    """A simulator that answers every request as a relay (the constructor flag)."""
    app = Simulator(api_key=SIMULATOR_KEY, tokens_per_second=0, first_token_delay=0, relay=True)
    with serve(app) as base_url:
        yield RunningSimulator(base_url, app, SIMULATOR_KEY)


@pytest.fixture
async def http(simulator_server):
    headers = {"Authorization": f"Bearer {simulator_server.api_key}"}
    async with httpx.AsyncClient(base_url=simulator_server.base_url, headers=headers) as client:
        yield client


async def frames(http: httpx.AsyncClient, body: dict) -> list[str]:
    response = await http.post("/responses", json={**body, "stream": True})
    assert response.status_code == 200, response.text
    return [frame for frame in response.text.split("\n\n") if frame]


async def events(http: httpx.AsyncClient, body: dict) -> list[dict]:
    """Return the JSON events of a relayed stream (without the final [DONE])."""
    return [
        json.loads(frame.split("data: ", 1)[1])
        for frame in await frames(http, body)
        if frame != "data: [DONE]"
    ]


def answer(streamed: list[dict]) -> str:
    return streamed[-1]["response"]["output"][0]["content"][0]["text"]


async def test_relay_forgets_previous_response_id(http):
    first = await events(http, {"model": RELAY, "input": "Hi, my name is Ming."})
    second = await events(
        http,
        {
            "model": RELAY,
            "input": "What is my name?",
            "previous_response_id": first[-1]["response"]["id"],
        },
    )
    assert answer(second) == "You haven't told me your name yet."


async def test_relay_accepts_a_previous_response_id_that_never_existed(http):
    streamed = await events(
        http, {"model": RELAY, "input": "Hello", "previous_response_id": "resp_nope"}
    )
    assert streamed[-1]["type"] == "response.completed"


async def test_relay_echoes_a_different_previous_response_id_only_at_the_end(http):
    streamed = await events(
        http, {"model": RELAY, "input": "Hello", "previous_response_id": "resp_sent"}
    )
    assert streamed[0]["response"]["previous_response_id"] is None
    echoed = streamed[-1]["response"]["previous_response_id"]
    assert echoed.startswith("chatcmpl-") and echoed != "resp_sent"


async def test_relay_response_ids_are_long_blobs(http):
    streamed = await events(http, {"model": RELAY, "input": "Hello"})
    response_id = streamed[-1]["response"]["id"]
    assert len(response_id) > 400 and response_id == streamed[0]["response"]["id"]


async def test_relay_stream_has_data_lines_only_and_ends_with_done(http):
    sent = await frames(http, {"model": RELAY, "input": "Hello"})
    assert sent[-1] == "data: [DONE]"
    assert all(frame.startswith("data: ") for frame in sent)
    assert all(json.loads(frame[6:])["model"] == "sim-chat" for frame in sent[:-1])


async def test_relay_failed_keeps_its_event_line(http):
    sent = await frames(http, {"model": "sim-chat+fault=relay,failed", "input": "Hello"})
    assert sent[-2].startswith("event: response.failed\ndata: ")


async def test_relay_http_errors_carry_the_status_as_a_string_code(http):
    body = {"model": RELAY, "input": "Hi", "reasoning": {"effort": "high"}}
    response = await http.post("/responses", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "400"


async def test_relay_rate_limit_code_is_a_string_too(http):
    response = await http.post(
        "/responses", json={"model": "sim-chat+fault=relay,429", "input": "Hi"}
    )
    assert response.status_code == 429 and response.json()["error"]["code"] == "429"


async def test_relay_responses_are_not_stored(http):
    streamed = await events(http, {"model": RELAY, "input": "Hello"})
    response = await http.get(f"/responses/{streamed[-1]['response']['id']}")
    assert response.status_code == 404


async def test_relay_function_output_for_a_forgotten_call_is_a_400(http):
    tool = {
        "type": "function",
        "name": "get_time",
        "parameters": {"type": "object", "properties": {}},
    }
    first = await events(http, {"model": RELAY, "input": "What time is it?", "tools": [tool]})
    call_id = first[-1]["response"]["output"][0]["call_id"]
    body = {
        "model": RELAY,
        "input": [{"type": "function_call_output", "call_id": call_id, "output": "10:00"}],
        "previous_response_id": first[-1]["response"]["id"],
        "tools": [tool],
    }
    response = await http.post("/responses", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "400"


async def test_relay_constructor_flag_relays_every_request(relay_server):
    async with make_client(relay_server) as client:
        first = await collect(
            client, ResponseRequest(model="sim-chat", input="Hi, my name is Ming.")
        )
        second = await collect(
            client,
            ResponseRequest(
                model="sim-chat",
                input="What is my name?",
                previous_response_id=first[-1].response.id,
            ),
        )
    assert isinstance(second[-1], ResponseCompleted)
    assert streamed_text(second) == "You haven't told me your name yet."
    assert second[-1].response.previous_response_id != first[-1].response.id
