"""The conformance upstream over stdio, with the real `mcp` SDK client (the suite itself
covers Streamable HTTP: tests/conformance/test_suite.py)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.conformance.processes import run_conformance_upstream
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


def _events(response: httpx.Response, within_s: float = 10) -> Iterator[dict[str, str]]:
    """The SSE events of a streamed response, each as its fields (id, data, retry, ...); fails
    once `within_s` has passed (checked per line: the server's keep-alive pings are lines)."""
    deadline = time.monotonic() + within_s
    event: dict[str, str] = {}
    for line in response.iter_lines():
        assert time.monotonic() < deadline, f"no end of the SSE stream within {within_s}s"
        if not line:
            if event:
                yield event
            event = {}
            continue
        name, _, value = line.partition(":")
        event[name] = event.get(name, "") + value.removeprefix(" ")
    if event:
        yield event


def _post(http: httpx.Client, session: str, body: dict[str, Any]) -> httpx.Response:
    return http.post("/mcp", json=body, headers=_post_headers(session))


def _post_headers(session: str) -> dict[str, str]:
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    return {**headers, "MCP-Session-Id": session} if session else headers


def test_a_call_whose_stream_closes_is_resumed_with_last_event_id(tmp_path: Path) -> None:
    """test_reconnection closes its SSE stream before answering (SEP-1699); the answer comes
    from the event store when the client reconnects with Last-Event-ID. The suite cannot show
    this (its request says protocol 2025-03-26, where the SDK never closes a stream)."""
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    with run_conformance_upstream(tmp_path) as upstream, httpx.Client(base_url=upstream.url, timeout=30) as http:
        opened = _post(http, "", {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        session = opened.headers["mcp-session-id"]
        _post(http, session, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "test_reconnection"}}
        with http.stream("POST", "/mcp", json=call, headers=_post_headers(session)) as first:
            before = list(_events(first))
        resume = {**_post_headers(session), "Accept": "text/event-stream", "Last-Event-ID": before[-1]["id"]}
        with http.stream("GET", "/mcp", headers=resume) as second:
            after = next(json.loads(e["data"]) for e in _events(second) if '"id":2' in e.get("data", ""))
    assert before[0]["data"] == "" and before[0]["retry"] == "100", "a priming event opens the stream"
    assert not any('"id":2' in e.get("data", "") for e in before), "the answer came before the stream closed"
    assert after["result"]["content"][0]["text"] == "Reconnection test completed"
