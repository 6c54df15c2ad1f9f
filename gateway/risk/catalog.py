"""Where a catalog to classify comes from: a running pool, the upstreams file, or JSON.

Owns turning each source into `CatalogTool` values (public name, server, definition). Launching
the upstreams file's servers goes through the gateway's own `UpstreamPool`, so the definitions
are exactly those a gateway with that file would publish.

Must never: classify, suggest or write anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types

from gateway.names import split_offline
from gateway.risk.suggest import CatalogTool
from gateway.upstream.pool import UpstreamPool
from gateway.upstream.spec import load_upstreams


class CatalogError(ValueError):
    """The catalog could not be read; the message says from where and why."""


def from_pool(pool: UpstreamPool) -> list[CatalogTool]:
    """The tools a running gateway publishes now (ready upstreams only)."""
    return [CatalogTool(e.public_name, e.upstream.name, e.tool) for e in pool.catalog()]


async def from_upstreams(path: Path, separator: str = "__", timeout_s: float = 60.0) -> list[CatalogTool]:
    """Launch every server of the upstreams file, list its tools, stop them. Every server must answer."""
    pool = UpstreamPool(load_upstreams(path), separator=separator, connect_timeout_s=timeout_s)
    async with anyio.create_task_group() as tg:
        pool.start(tg)
        ready = await pool.wait_ready(timeout_s)
        tools = from_pool(pool)
        statuses = pool.statuses()
        tg.cancel_scope.cancel()
    if not ready:
        down = [f"{s.name} ({s.state}: {s.last_error or 'no answer'})" for s in statuses if s.state != "ready"]
        raise CatalogError(f"{path}: upstreams not ready within {timeout_s:g}s: {', '.join(down)}")
    return tools


def from_json(data: Any, separator: str = "__") -> list[CatalogTool]:
    """A tools/list result with public names (``{"tools": [...]}``, a JSON-RPC response holding one,
    or `/admin/tools` output), split into server and tool at the separator."""
    if isinstance(data, Mapping):
        data = data.get("result", data)
        data = data.get("tools") if isinstance(data, Mapping) else data
    if not isinstance(data, list):
        raise CatalogError('expected {"tools": [...]} or a list of tools')
    found: list[CatalogTool] = []
    for i, raw in enumerate(data):
        try:
            tool = types.Tool.model_validate(raw.get("definition", raw))
        except (AttributeError, ValueError) as exc:
            raise CatalogError(f"tools[{i}] is not an MCP tool: {exc}") from exc
        server, name = _server_and_tool(raw, tool.name, separator)
        if not server:
            raise CatalogError(f"tools[{i}]: {tool.name!r} is not a public name <server>{separator}<tool>")
        found.append(CatalogTool(tool.name, server, tool.model_copy(update={"name": name})))
    return found


def _server_and_tool(raw: Any, public: str, separator: str) -> tuple[str, str]:
    """`/admin/tools` rows name their server and upstream tool (unprefixed mounts too); else split the name."""
    if isinstance(raw, Mapping) and isinstance(raw.get("server"), str) and isinstance(raw.get("tool"), str):
        return raw["server"], raw["tool"]
    return split_offline(public, separator)
