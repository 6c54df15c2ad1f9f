"""What one upstream offers: its tools, and besides them its resources, resource templates and prompts.

Owns: listing them, every page, from a connected upstream client (``list_all_tools``;
``list_offerings``, only what the upstream's capabilities declare: an upstream without
``resources`` is never asked for them), and whether it takes 2025-style
``resources/subscribe``. ``gateway.upstream.connection.Upstream`` lists on connect, on every
idle-time probe and when the upstream says a list changed.

Must never: rewrite what it lists (names and URIs stay the upstream's own; namespacing
is ``resources.py``'s and ``prompts.py``'s job), or follow an upstream's cursors forever
(``MAX_PAGES``, tools included: a hostile upstream cannot hold a listing open).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import mcp_types as types
from mcp.client.client import Client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

MAX_PAGES = 100
"""Pages read of one list per listing; the rest of a longer list is not offered."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Offerings:
    """One listing of an upstream's resources, templates and prompts (empty where it declares none)."""

    resources: tuple[types.Resource, ...] = ()
    templates: tuple[types.ResourceTemplate, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    subscribe: bool = False
    """The upstream takes ``resources/subscribe`` (a 2025 session whose capabilities say so)."""
    completions: bool = False

    def resource(self, uri: str) -> types.Resource | None:
        return next((r for r in self.resources if r.uri == uri), None)

    def prompt(self, name: str) -> types.Prompt | None:
        return next((p for p in self.prompts if p.name == name), None)


async def list_offerings(client: Client) -> Offerings:
    """Everything the connected upstream declares, each list read to its end (or ``MAX_PAGES``)."""
    caps = client.server_capabilities
    resources: list[types.Resource] = []
    templates: list[types.ResourceTemplate] = []
    prompts: list[types.Prompt] = []
    if caps.resources is not None:
        resources = await _all_pages(lambda c: client.list_resources(cursor=c), lambda r: r.resources)
        templates = await _all_pages(lambda c: client.list_resource_templates(cursor=c), lambda r: r.resource_templates)
    if caps.prompts is not None:
        prompts = await _all_pages(lambda c: client.list_prompts(cursor=c), lambda r: r.prompts)
    subscribe = bool(caps.resources and caps.resources.subscribe) and (
        client.protocol_version not in MODERN_PROTOCOL_VERSIONS
    )
    return Offerings(tuple(resources), tuple(templates), tuple(prompts), subscribe, caps.completions is not None)


async def list_all_tools(client: Client) -> list[types.Tool]:
    """Every page of the upstream's tools/list (or ``MAX_PAGES``)."""
    return await _all_pages(lambda c: client.list_tools(cursor=c), lambda r: r.tools)


async def _all_pages(fetch: Callable[[str | None], Awaitable[Any]], items: Callable[[Any], list[T]]) -> list[T]:
    listed: list[T] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor)
        listed.extend(items(page))
        cursor = page.next_cursor
        if not cursor:
            break
    return listed
