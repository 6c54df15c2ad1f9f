"""`_meta` across the gateway: which keys of a client's request go upstream, and which keys of an
upstream's result reach the client.

Request ``_meta`` (tools/call): forwarded to the upstream minus what the gateway owns:

- ``warden/*``: the gateway's own keys (``warden/request_id``, read by mcp_front);
- ``progressToken``: per call, mapped by the relay (a client's token is not the upstream's);
- ``io.modelcontextprotocol/*``: the protocol's reserved keys. At 2026-07-28 they are the
  request envelope (protocol version, client info and capabilities, log level) describing the
  client's connection to the gateway; the gateway's own client sets them for its upstream.

Result ``_meta``: forwarded minus ``warden/*`` (an upstream never speaks for the gateway) and
``io.modelcontextprotocol/*`` (protocol state of the upstream connection, e.g. a related task
or subscription id, meaningless on the client's connection). Vendor keys pass unchanged: they
belong to the upstream's answer like its content does.

Never: forwards a key the gateway owns, in either direction; credentials never travel in
``_meta`` here (headers are not ``_meta``, and the upstream connection has its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mcp_types as types

GATEWAY_PREFIX = "warden/"
PROTOCOL_PREFIX = "io.modelcontextprotocol/"
_PROGRESS_KEYS = frozenset({"progressToken", "progress_token"})  # the SDK parses the wire key to the latter


def _owned(key: str) -> bool:
    return key.startswith((GATEWAY_PREFIX, PROTOCOL_PREFIX))


def to_upstream(meta: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The client's request ``_meta`` the upstream gets; None when nothing is left."""
    kept = {k: v for k, v in (meta or {}).items() if not _owned(k) and k not in _PROGRESS_KEYS}
    return kept or None


def to_client(result: types.CallToolResult) -> types.CallToolResult:
    """The upstream's result with the gateway-owned and protocol keys taken out of its ``_meta``."""
    if not result.meta:
        return result
    kept = {k: v for k, v in result.meta.items() if not _owned(k)}
    return result.model_copy(update={"meta": kept or None})
