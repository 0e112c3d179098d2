"""Which tool the simulator calls: the web when asked for the web, history when asked for it."""

from __future__ import annotations

import json

import httpx
import pytest

from conversations.tools import all_tools


def function_tools() -> list[dict]:
    """Every server-side tool, as the app offers them in a request."""
    return [
        {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            "strict": True,
        }
        for tool in all_tools()
    ]


@pytest.fixture
async def http(simulator_server):
    headers = {"Authorization": f"Bearer {simulator_server.api_key}"}
    async with httpx.AsyncClient(base_url=simulator_server.base_url, headers=headers) as client:
        yield client


async def first_output(http: httpx.AsyncClient, text: str, *, web_search: bool) -> dict:
    tools = function_tools() + ([{"type": "web_search"}] if web_search else [])
    response = await http.post(
        "/responses", json={"model": "sim-chat", "input": text, "tools": tools}
    )
    assert response.status_code == 200, response.text
    return response.json()["output"][0]


async def test_search_the_web_uses_web_search_not_the_history(http):
    output = await first_output(http, "Search the web for the Eiffel tower", web_search=True)

    assert output["type"] == "web_search_call"


async def test_search_the_web_without_web_search_calls_no_tool(http):
    output = await first_output(http, "Search the web for the Eiffel tower", web_search=False)

    assert output["type"] == "message"


async def test_asking_about_earlier_conversations_searches_them_within_limits(http):
    output = await first_output(http, "Find kumquat in my conversations", web_search=True)

    assert output["type"] == "function_call" and output["name"] == "search_conversations"
    assert 1 <= json.loads(output["arguments"])["limit"] <= 10
