"""What a listed tool is to the gateway: its definition hash, and its entry under a public name.

Owns: ``definition_hash`` (sha256 over what a tool tells a model: its name, title,
description, input and output schema and annotations; tool pinning, ``gateway/pins.py``,
and approvals bind it) and ``CatalogEntry`` (a namespaced tool: what the agent sees, and
which upstream serves it). Each upstream hashes its tools on every listing
(``Upstream.refresh_catalog``); ``UpstreamPool`` builds the entries.

Never: lists, names or filters tools (``gateway.upstream.pool`` maps names; the proxy
filters by pins and grants).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mcp_types as types

from gateway.types import canonical_json

if TYPE_CHECKING:
    from gateway.upstream.connection import Upstream


def definition_hash(tool: types.Tool) -> str:
    """sha256 of what a tool tells a model: name, title, description, input/output schema, annotations."""
    annotations = tool.annotations.model_dump(mode="json", exclude_none=True) if tool.annotations else None
    definition = {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
        "annotations": annotations,
    }
    return hashlib.sha256(canonical_json(definition).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A namespaced tool: what the agent sees, and where it goes."""

    public_name: str
    upstream: Upstream
    tool: types.Tool
    definition_hash: str

    @property
    def server(self) -> str:
        return self.upstream.name
