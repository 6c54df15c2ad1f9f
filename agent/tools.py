"""The agent's tools: an MCP client session to the Warden gateway, as the agent's identity.

Owns: connecting to the gateway's MCP endpoint (Streamable HTTP) with the agent's API key,
offering the model exactly the gateway's `tools/list` for that identity (as OpenAI tools), and
calling a tool with the user request's correlation id in `_meta` (`warden/request_id`), which
the gateway writes into the audit log (`request_ref`).

Never: calls an upstream MCP server directly, or turns a refused call into an exception:
denials, approvals and tool errors are results the model reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx2
import mcp_types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import RequestParamsMeta

from agent.llm import Tool

REQUEST_ID_META_KEY = "warden/request_id"
"""The `_meta` key the gateway reads on tools/call (gateway/mcp_front.py)."""


def openai_tool(tool: mcp_types.Tool) -> Tool:
    """One MCP tool as the OpenAI tool the model is offered.

    The one conversion: training data (finetune.catalog) is built with it too, so training prompts
    render exactly what the agent offers, key order included (a 135M model answers differently to
    another order).
    """
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description or "",
            "parameters": tool.input_schema or {"type": "object", "properties": {}},
        },
    }


class GatewayError(RuntimeError):
    """The gateway could not be reached or refused the agent's key."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    text: str
    is_error: bool


class GatewayTools:
    """The tools one identity may use, through one MCP session to the gateway."""

    def __init__(self, client: Client, call_timeout_s: float) -> None:
        self.client = client
        self.call_timeout_s = call_timeout_s

    async def openai_tools(self) -> list[Tool]:
        try:
            result = await self.client.list_tools()
        except Exception as exc:  # boundary: the run cannot start without its tools; say why
            raise GatewayError(f"the gateway's tools/list failed: {type(exc).__name__}: {exc}") from exc
        return [openai_tool(t) for t in result.tools]

    async def call(self, name: str, arguments: dict[str, Any], request_id: str) -> ToolResult:
        try:
            result = await self.client.call_tool(
                name,
                arguments,
                read_timeout_seconds=self.call_timeout_s,
                meta=cast(RequestParamsMeta, {REQUEST_ID_META_KEY: request_id}),
            )
        except Exception as exc:  # boundary: a failed call is a result for the model, not a crash
            return ToolResult(f"the gateway could not run {name}: {type(exc).__name__}: {exc}", True)
        text = "\n".join(getattr(c, "text", "") for c in result.content).strip()
        return ToolResult(text, bool(result.is_error))


@asynccontextmanager
async def connect(mcp_url: str, api_key: str, call_timeout_s: float = 60.0) -> AsyncIterator[GatewayTools]:
    """An MCP session to the gateway at `mcp_url` (e.g. http://127.0.0.1:8700/mcp) as the key's identity.

    Raises GatewayError when the session cannot be opened (no gateway, a refused key).
    """
    statuses: list[int] = []

    async def remember(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    headers = {"Authorization": f"Bearer {api_key}"}
    async with AsyncExitStack() as stack:
        try:
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers=headers, timeout=call_timeout_s + 10, event_hooks={"response": [remember]})
            )
            client = await stack.enter_async_context(
                Client(streamable_http_client(mcp_url, http_client=http), cache=None)
            )
        except Exception as exc:  # boundary: whatever the SDK raised, say what went wrong
            raise _session_error(mcp_url, exc, statuses) from exc
        yield GatewayTools(client, call_timeout_s)


def _session_error(mcp_url: str, exc: BaseException, statuses: list[int]) -> GatewayError:
    if 401 in statuses:
        return GatewayError(f"the gateway at {mcp_url} refused the API key (401); check WARDEN_API_KEY / --key-file")
    leaves = _leaves(exc)
    if any(isinstance(e, httpx2.TransportError | OSError) for e in leaves):
        return GatewayError(f"no gateway answering at {mcp_url}; start it with `warden gateway serve`")
    return GatewayError(f"could not open an MCP session with the gateway at {mcp_url}: {leaves[0]!r}")


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]
