"""gateway/upstream/listings.py: what one upstream offers, listed from a real in-process MCP server (the SDK's
``Client(server)``): every page, only what its capabilities declare, never an endless listing."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.server.lowlevel.server import Server

from gateway.upstream import listings
from gateway.upstream.listings import list_offerings

pytestmark = pytest.mark.anyio


def _paged_server(pages: int | None) -> Server[Any]:
    """Resources in pages of one; ``pages=None``: a hostile server whose cursor never ends."""

    async def list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        n = int(params.cursor) if params is not None and params.cursor else 0
        more = pages is None or n + 1 < pages
        resource = types.Resource(name=f"r{n}", uri=f"test://r/{n}")
        return types.ListResourcesResult(resources=[resource], next_cursor=str(n + 1) if more else None)

    async def list_templates(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[])

    return Server("paged", on_list_resources=list_resources, on_list_resource_templates=list_templates)


async def test_every_page_of_an_upstreams_resources_is_listed() -> None:
    async with Client(_paged_server(5), cache=None) as client:
        offered = await list_offerings(client)
    assert [r.uri for r in offered.resources] == [f"test://r/{n}" for n in range(5)]
    assert offered.prompts == () and not offered.completions


async def test_a_hostile_upstreams_endless_cursor_stops_at_max_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listings, "MAX_PAGES", 7)
    async with Client(_paged_server(None), cache=None) as client:
        offered = await list_offerings(client)
    assert len(offered.resources) == 7


async def test_an_upstream_that_declares_no_resources_or_prompts_is_not_asked() -> None:
    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[])

    async with Client(Server("tools-only", on_list_tools=list_tools), cache=None) as client:
        offered = await list_offerings(client)
    assert offered == listings.Offerings()
