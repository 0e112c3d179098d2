"""Server-side tools the model can call: a time zone clock, a calculator, a history search.

    tools = [to_function_tool(tool) for tool in all_tools()]      # offer them in the request
    result = run_call(item.name, item.arguments, ToolContext(user, conversation.pk))
    function_call_output(item.call_id, result.output)             # answer the model

`run_call` never raises: every failure becomes an error output the model can read.
"""

from __future__ import annotations

from .base import Tool, ToolContext, ToolError
from .registry import (
    MAX_ARGUMENTS_BYTES,
    MAX_OUTPUT_BYTES,
    REGISTRY,
    ToolResult,
    all_tools,
    get_tool,
    run_call,
    to_function_tool,
)

__all__ = [
    "MAX_ARGUMENTS_BYTES",
    "MAX_OUTPUT_BYTES",
    "REGISTRY",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "all_tools",
    "get_tool",
    "run_call",
    "to_function_tool",
]
