"""The conformance upstream over stdio, with the real `mcp` SDK client (the suite itself
covers Streamable HTTP: tests/conformance/test_suite.py)."""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.gateway.harness import REPO

# resources/subscribe is the 2025 era's way, which the suite tests; 2026-07-28 replaced it with listen().
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]

PARAMS = StdioServerParameters(
    command=sys.executable,
    args=["-m", "tests.upstreams.conformance_server", "--stdio"],
    cwd=str(REPO),
    env={"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "")},
)


async def _sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content
    text = asked.text if isinstance(asked, types.TextContent) else "?"
    return types.CreateMessageResult(role="assistant", content=types.TextContent(text=f"echo {text}"), model="m")


async def test_tools_resources_prompts_and_server_requests_over_stdio() -> None:
    logs: list[Any] = []
    updates: list[str] = []
    updated = anyio.Event()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            updated.set()

    client_options: dict[str, Any] = {"sampling_callback": _sample, "logging_callback": on_log}
    async with Client(PARAMS, mode="legacy", cache=None, message_handler=on_message, **client_options) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        image = await client.call_tool("test_image_content", {})
        sampled = await client.call_tool("test_sampling", {"prompt": "hi"})
        await client.call_tool("test_tool_with_logging", {})
        failed = await client.call_tool("test_error_handling", {})
        template = await client.read_resource("test://template/7/data")
        prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        await client.subscribe_resource("test://watched-resource")
        await client.call_tool("update_watched_resource", {"text": "new"})
        with anyio.fail_after(10):
            await updated.wait()
        watched = await client.read_resource("test://watched-resource")

    assert tools["json_schema_2020_12_tool"].input_schema["$defs"]["address"]["type"] == "object"
    assert isinstance(image.content[0], types.ImageContent) and image.content[0].mime_type == "image/png"
    assert isinstance(sampled.content[0], types.TextContent) and sampled.content[0].text == "LLM response: echo hi"
    assert logs == ["Tool execution started", "Tool processing data", "Tool execution completed"]
    assert failed.is_error
    assert isinstance(template.contents[0], types.TextResourceContents) and '"id": "7"' in template.contents[0].text
    assert "arg1='a', arg2='b'" in str(prompt.messages[0].content)
    assert updates == ["test://watched-resource"]
    assert isinstance(watched.contents[0], types.TextResourceContents) and watched.contents[0].text == "new"


async def test_unknown_names_are_errors() -> None:
    async with Client(PARAMS, mode="legacy", cache=None) as client:
        with pytest.raises(Exception, match="Resource not found"):
            await client.read_resource("test://nothing")
        with pytest.raises(Exception, match="Unknown prompt"):
            await client.get_prompt("nope")
