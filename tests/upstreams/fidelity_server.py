"""A stdio MCP upstream for the gateway's fidelity tests (what passes through unchanged, what does not).

Tools: ``refuse`` answers with a JSON-RPC error (code -32602, data), never a tool result;
``meta_echo`` returns the request ``_meta`` it received as JSON text, and a result ``_meta``
holding a vendor key, a key in the gateway's ``warden/`` namespace and a protocol-reserved key
(``io.modelcontextprotocol/related-task``), so tests see which of them reach the client.
``shrink`` removes ``meta_echo`` and announces it with ``notifications/tools/list_changed`` on
the session; with ``--legacy`` the server refuses ``server/discover``, so clients fall back to
the 2025 handshake and the notification travels the 2025 way (on the stdio pipe, unprompted).

Run: python -m tests.upstreams.fidelity_server [--legacy]   (stdio)
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.runner import serve_loop
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

server = MCPServer("fidelity")

RESULT_META: dict[str, Any] = {
    "vendor.example/trace": "t-42",
    "warden/approved_by": "forged-by-upstream",
    "io.modelcontextprotocol/related-task": {"taskId": "upstream-task"},
}


@server.tool()
def refuse(reason: str) -> str:
    """Refuse with a JSON-RPC error."""
    raise MCPError(types.INVALID_PARAMS, f"refused: {reason}", {"reason": reason})


@server.tool()
def meta_echo(ctx: Context) -> types.CallToolResult:
    """Return the request's _meta; the result carries _meta of its own."""
    received = dict(ctx.request_context.meta or {})
    text = json.dumps(received, sort_keys=True, default=str)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], _meta=RESULT_META)


@server.tool()
async def shrink(ctx: Context) -> str:
    """Remove meta_echo and tell the client its tool list changed."""
    server.remove_tool("meta_echo")
    await ctx.request_context.session.send_tool_list_changed()
    return "meta_echo removed"


async def _serve_2025_only() -> None:
    """stdio in handshake-only loop mode: a 2026 probe is refused, so clients fall back to initialize."""
    low = server._lowlevel_server
    async with stdio_server() as (read, write), low.lifespan(low) as state:
        await serve_loop(low, read, write, lifespan_state=state)


if __name__ == "__main__":
    if "--legacy" in sys.argv[1:]:
        anyio.run(_serve_2025_only)
    else:
        server.run("stdio")
