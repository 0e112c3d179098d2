"""Request bodies and input items, exactly as the Responses API documents them."""

from __future__ import annotations

import base64

from conversations.gateway.request import (
    FunctionTool,
    Reasoning,
    ResponseRequest,
    WebSearchTool,
    assistant_message,
    function_call_item,
    function_call_output,
    image_part,
    reasoning_item,
    replay_output,
    user_message,
)
from conversations.gateway.response import (
    FunctionCallItem,
    MessageItem,
    OutputText,
    ReasoningItem,
    WebSearchCallItem,
)
from tests.gateway.helpers import TIME_TOOL


def test_minimal_body_has_model_input_and_stream_flag():
    assert ResponseRequest(model="m", input="Hi").to_body() == {
        "model": "m",
        "input": "Hi",
        "stream": False,
    }


def test_stream_options_are_sent_only_when_asked_for():
    """Relays reject or drop `stream_options`, so only a gateway known to take it gets it."""
    plain = ResponseRequest(model="m", input="Hi", stream=True).to_body()
    asked = ResponseRequest(
        model="m", input="Hi", stream=True, stream_options={"include_obfuscation": False}
    ).to_body()
    assert plain["stream"] is True and "stream_options" not in plain
    assert asked["stream_options"] == {"include_obfuscation": False}


def test_full_body_carries_every_setting():
    request = ResponseRequest(
        model="sim-reasoner",
        input=[user_message("Hi")],
        instructions="Be brief.",
        previous_response_id="resp_1",
        store=False,
        reasoning=Reasoning(effort="high", summary="auto"),
        max_output_tokens=500,
        tools=[TIME_TOOL, WebSearchTool()],
        tool_choice="auto",
        include=["reasoning.encrypted_content"],
        metadata={"conversation": "42"},
    )
    body = request.to_body()
    assert body["instructions"] == "Be brief." and body["previous_response_id"] == "resp_1"
    assert body["store"] is False and body["max_output_tokens"] == 500
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["metadata"] == {"conversation": "42"} and body["tool_choice"] == "auto"


def test_function_tools_use_the_flat_responses_format():
    tool = FunctionTool(
        "get_weather", {"type": "object", "properties": {}}, "Weather now", strict=False
    )
    assert tool.to_dict() == {
        "type": "function",
        "name": "get_weather",
        "description": "Weather now",
        "parameters": {"type": "object", "properties": {}},
        "strict": False,
    }


def test_web_search_tool_types():
    assert WebSearchTool().to_dict() == {"type": "web_search"}
    assert WebSearchTool(preview=True, search_context_size="low").to_dict() == {
        "type": "web_search_preview",
        "search_context_size": "low",
    }


def test_forced_tool_choice_is_flat():
    body = ResponseRequest(
        model="m", tool_choice={"type": "function", "name": "get_weather"}
    ).to_body()
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}


def test_user_message_with_images_uses_data_urls():
    message = user_message("What is this?", images=[("image/png", b"\x89PNG")])
    text, image = message["content"]
    assert message["role"] == "user" and text == {"type": "input_text", "text": "What is this?"}
    assert image == {
        "type": "input_image",
        "image_url": "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode(),
        "detail": "auto",
    }


def test_image_part_detail_can_be_chosen():
    assert image_part("image/jpeg", b"x", detail="low")["detail"] == "low"


def test_replay_items():
    assert assistant_message("Hello") == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello"}],
    }
    assert function_call_item("call_1", "f", "{}") == {
        "type": "function_call",
        "call_id": "call_1",
        "name": "f",
        "arguments": "{}",
    }
    assert function_call_output("call_1", "42") == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "42",
    }
    assert reasoning_item("rs_1", "gAAAA", ["thought"]) == {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "thought"}],
        "encrypted_content": "gAAAA",
    }


def test_replay_output_keeps_what_a_stateless_turn_needs():
    output = [
        ReasoningItem("rs_1", "completed", ("why",), encrypted_content="gAAAA"),
        ReasoningItem("rs_2", "completed", ()),
        WebSearchCallItem("ws_1", "completed", "search", "tea"),
        FunctionCallItem("fc_1", "call_1", "f", "{}"),
        MessageItem("msg_1", "assistant", "completed", (OutputText("Hello"),)),
    ]
    assert [item["type"] for item in replay_output(output)] == [
        "reasoning",
        "function_call",
        "message",
    ]
