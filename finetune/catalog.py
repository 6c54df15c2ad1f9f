"""Tool catalogs: what an identity may call, as OpenAI tools.

Reads a catalog from a running gateway's `tools/list` (Streamable HTTP, Bearer key: the tools
that identity sees), from any stdio MCP server, or from a JSON file (a list of OpenAI tools, of
MCP tools with `inputSchema`, or `{"tools": [...]}`). A tool without an input schema is an error
that names it. Never writes anything.

MCP tools become OpenAI tools through the agent's own conversion (`agent.tools.openai_tool`), and
a gateway's catalog is read through the agent's own client (`agent.tools.connect`): training
prompts are rendered from exactly the JSON the agent offers its model, key order included.
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


def from_stdio(command: str, args: list[str]) -> list[Tool]:
    """`tools/list` of a stdio MCP server started with `command args`, read with the client the gateway
    uses for its upstreams (`mcp` Client, mode auto): another client may get the schemas in another key
    order than the agent is offered them through the gateway."""
    from mcp.client.client import Client
    from mcp.client.stdio import StdioServerParameters

    from agent.tools import openai_tool

    where = f"{command} {' '.join(args)}"

    async def run() -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        async with Client(StdioServerParameters(command=command, args=args), mode="auto", cache=None) as client:
            while True:
                page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
                tools += [to_openai(openai_tool(t), where) for t in page.tools]
                cursor = page.next_cursor
                if not cursor:
                    return tools

    return anyio.run(run)


def from_gateway(url: str, api_key: str) -> list[Tool]:
    """`tools/list` of a running Warden gateway for the identity that owns `api_key`, exactly as the
    agent offers it (`agent.tools`). Raises CatalogError naming the gateway when it cannot be reached
    or refuses the key."""
    from agent.tools import GatewayError, connect

    async def run() -> list[Tool]:
        async with connect(url, api_key) as gateway:
            return await gateway.openai_tools()

    try:
        tools = anyio.run(run)
    except GatewayError as e:
        raise CatalogError(f"catalog from the gateway: {e}") from e
    if not tools:
        raise CatalogError(f"the gateway at {url} lists no tools for this key's identity")
    return [to_openai(t, url) for t in tools]
