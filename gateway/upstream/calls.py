"""The SDK calls behind the requests the gateway forwards to a connected upstream.

Owns: how one forwarded ``tools/call`` is made with the SDK client (``call_tool``): plain,
or carrying its ``CallRelay``'s progress callback and log level, and, for a 2026-07-28
client, its answers to the upstream's input requests (with the spec's one retry after a
stale listing, ``HEADER_MISMATCH``); and a 2025 ``resources/subscribe`` /
``unsubscribe`` (``subscribe``).

Never: times out, retries a call that may have reached the upstream, or translates its
failures (``Upstream.call`` and ``Upstream.send`` do both, with ``gateway.upstream.errors``).
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import mcp_types as types
from mcp.client.client import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway.relay import CallRelay


async def subscribe(client: Client, uri: str, on: bool) -> types.EmptyResult:
    """``resources/subscribe`` (``on``) or ``resources/unsubscribe`` of ``uri``."""
    with warnings.catch_warnings():  # resources/subscribe is the 2025 wire; deprecated only for 2026-07-28
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        return await (client.subscribe_resource(uri) if on else client.unsubscribe_resource(uri))


async def call_tool(
    client: Client, tool: str, arguments: dict[str, Any], relay: CallRelay | None, extra: dict[str, Any]
) -> types.CallToolResult | types.InputRequiredResult | types.Result:
    """The SDK call for one forwarded tools/call: plain, or carrying this call's relay."""
    if relay is None:
        return await client.call_tool(tool, arguments, meta=cast(types.RequestParamsMeta, extra) if extra else None)
    progress = relay.progress if relay.wants_progress else None
    if relay.log_level is not None and relay.link.streams and client.protocol_version in MODERN_PROTOCOL_VERSIONS:
        extra[types.LOG_LEVEL_META_KEY] = relay.log_level
    meta = cast(types.RequestParamsMeta, extra) if extra else None
    if not relay.modern:
        return await client.call_tool(tool, arguments, progress_callback=progress, meta=meta)
    # A 2026-07-28 client answers the upstream's input requests itself (the proxy relays them).
    for attempt in (1, 2):
        try:
            return await client.session.call_tool(
                tool,
                arguments,
                progress_callback=progress,
                input_responses=relay.input_responses or None,
                request_state=relay.upstream_state,
                meta=meta,
                allow_input_required=True,
            )
        except MCPError as exc:  # the spec's recovery from a stale listing, as Client.call_tool does it
            if exc.code != types.HEADER_MISMATCH or attempt == 2:
                raise
            await client.list_tools(cache_mode="refresh")
    raise AssertionError("unreachable")
