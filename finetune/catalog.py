"""Tool catalogs: what an identity may call, as OpenAI tools.

Reads a catalog from a running gateway's `tools/list` (Streamable HTTP, Bearer key: the tools
that identity sees), from any stdio MCP server, or from a JSON file (a list of OpenAI tools, of
MCP tools with `inputSchema`, or `{"tools": [...]}`). A tool without an input schema is an error
that names it. Never writes anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from finetune.synth import Tool


class CatalogError(ValueError):
    pass


def to_openai(tool: dict[str, Any], where: str) -> Tool:
    """An MCP tool (`inputSchema`) or an OpenAI tool, as an OpenAI tool."""
    fn = tool.get("function", tool)
    name = fn.get("name")
    schema = fn.get("parameters", fn.get("inputSchema"))
    if not isinstance(name, str) or not name:
        raise CatalogError(f"{where}: a tool has no name: {json.dumps(tool)[:200]}")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise CatalogError(f"{where}: tool {name!r} has no object schema (parameters / inputSchema)")
    return {
        "type": "function",
        "function": {"name": name, "description": fn.get("description") or "", "parameters": schema},
    }


def from_file(path: Path) -> list[Tool]:
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CatalogError(f"{path}: not JSON ({e})") from e
    tools = raw.get("tools") if isinstance(raw, dict) else raw
    if not isinstance(tools, list) or not tools:
        raise CatalogError(f"{path}: expected a non-empty list of tools or {{'tools': [...]}}")
    return [to_openai(t, f"{path}[{i}]") for i, t in enumerate(tools)]


async def _list(session: Any, where: str) -> list[Tool]:
    await session.initialize()
    result = await session.list_tools()
    return [to_openai(t.model_dump(by_alias=True, exclude_none=True), where) for t in result.tools]


def from_stdio(command: str, args: list[str]) -> list[Tool]:
    """`tools/list` of a stdio MCP server started with `command args`."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    async def run() -> list[Tool]:
        async with (
            stdio_client(StdioServerParameters(command=command, args=args)) as (r, w),
            ClientSession(r, w) as session,
        ):
            return await _list(session, f"{command} {' '.join(args)}")

    return anyio.run(run)


def from_gateway(url: str, api_key: str) -> list[Tool]:
    """`tools/list` of a running Warden gateway for the identity that owns `api_key`."""
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run() -> list[Tool]:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {api_key}"}) as http,
            streamable_http_client(url, http_client=http) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            return await _list(session, url)

    return anyio.run(run)
