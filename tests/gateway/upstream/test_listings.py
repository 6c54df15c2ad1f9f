"""gateway/upstream/listings.py: what one upstream offers, listed from a real in-process MCP server (the SDK's
``Client(server)``): every page, only what its capabilities declare, never an endless listing."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.server.lowlevel.server import Server

from gateway.upstream import listings
from gateway.upstream.listings import list_all_tools, list_offerings

pytestmark = pytest.mark.anyio


def _page(params: types.PaginatedRequestParams | None, pages: int | None) -> tuple[int, str | None]:
    n = int(params.cursor) if params is not None and params.cursor else 0
    return n, str(n + 1) if pages is None or n + 1 < pages else None


def _paged_server(pages: int | None) -> Server[Any]:
    """Tools and resources in pages of one; ``pages=None``: a hostile server whose cursor never ends."""

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        n, cursor = _page(params, pages)
        return types.ListToolsResult(
            tools=[types.Tool(name=f"t{n}", input_schema={"type": "object"})], next_cursor=cursor
        )

    async def list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        n, cursor = _page(params, pages)
        return types.ListResourcesResult(
            resources=[types.Resource(name=f"r{n}", uri=f"test://r/{n}")], next_cursor=cursor
        )

    async def list_templates(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[])

    return Server(
        "paged", on_list_tools=list_tools, on_list_resources=list_resources, on_list_resource_templates=list_templates
    )


async def test_every_page_of_an_upstreams_tools_and_resources_is_listed() -> None:
    async with Client(_paged_server(5), cache=None) as client:
        offered, tools = await list_offerings(client), await list_all_tools(client)
    assert [r.uri for r in offered.resources] == [f"test://r/{n}" for n in range(5)]
    assert [t.name for t in tools] == [f"t{n}" for n in range(5)]
    assert offered.prompts == () and not offered.completions


async def test_a_hostile_upstreams_endless_cursor_stops_at_max_pages() -> None:
    async with Client(_paged_server(None), cache=None) as client:
        offered, tools = await list_offerings(client), await list_all_tools(client)
    assert len(offered.resources) == listings.MAX_PAGES and len(tools) == listings.MAX_PAGES


async def test_an_upstream_that_declares_no_resources_or_prompts_is_not_asked() -> None:
    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[])

    async with Client(Server("tools-only", on_list_tools=list_tools), cache=None) as client:
        offered = await list_offerings(client)
    assert offered == listings.Offerings()
