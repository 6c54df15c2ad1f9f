"""Which tools an identity sees: the catalog filtered by tool pins and the identity's grants.

Owns: the catalog entries an identity may see and call (``visible``: accepted definitions it
is granted), what it sees as (public name, definition hash) pairs (``fingerprint``:
``gateway.changes`` compares these to tell a session its list changed), and the inputSchema
of one such tool (``input_schema``, for the SDK's header checks).

Never: audits (the tools/list event is ``Proxy.list_tools``'s), or names tools (the pool
does); a tool it does not show is one an identity cannot call either (``Proxy.call`` applies
the same pins and the policy's deny-by-default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.pins import ToolPins
from gateway.policy import PolicyStore
from gateway.types import Identity
from gateway.upstream.catalog import CatalogEntry
from gateway.upstream.pool import UpstreamPool


class Visibility:
    """The catalog as one identity sees it (see the module docstring)."""

    def __init__(self, *, policies: PolicyStore, pool: UpstreamPool, pins: ToolPins) -> None:
        self.policies = policies
        self.pool = pool
        self.pins = pins

    def visible(self, identity_name: str) -> list[CatalogEntry]:
        """The catalog entries an identity may see and call: accepted definitions it is granted."""
        policy = self.policies.current
        identity = Identity(identity_name, policy.roles_of(identity_name))
        return [
            entry
            for entry in self.pool.catalog()
            if self.pins.admits(entry) and policy.is_granted(identity, entry.public_name)
        ]

    def fingerprint(self, identity_name: str) -> frozenset[tuple[str, str]]:
        """What ``identity_name`` sees, as (public name, definition hash) pairs (list_changed compares these)."""
        return frozenset((entry.public_name, entry.definition_hash) for entry in self.visible(identity_name))

    def input_schema(self, public_name: str, identity_name: str | None) -> Mapping[str, Any] | None:
        """The inputSchema of a tool ``identity_name`` may see (for the SDK's header checks); else None."""
        entry = self._visible(public_name, identity_name) if identity_name is not None else None
        return entry.tool.input_schema if entry is not None else None

    def _visible(self, public_name: str, identity_name: str) -> CatalogEntry | None:
        entry = self.pool.entry(public_name)
        if entry is None or not self.pins.admits(entry):
            return None
        policy = self.policies.current
        return (
            entry if policy.is_granted(Identity(identity_name, policy.roles_of(identity_name)), public_name) else None
        )
