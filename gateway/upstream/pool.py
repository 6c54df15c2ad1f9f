"""All upstreams of one gateway, supervised together, and the catalog they make under public names.

Owns: ``UpstreamPool``: one ``Upstream`` per spec (names unique and free of the separator),
started in one task group; the live mapping between public tool names and (server,
upstream tool) (the scheme and the collision rules are ``gateway/names.py``'s; this is the
one place that applies them to what upstreams list), and the aggregated catalog of
``CatalogEntry`` values, rebuilt whenever any upstream's definitions change.

Never: filters the catalog by identity, grants or pins (``gateway.proxy.visibility`` does),
or talks to an upstream itself (each ``Upstream`` does).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import anyio
import mcp_types as types
from anyio.abc import TaskGroup

from gateway import names
from gateway.upstream.catalog import CatalogEntry, definition_hash
from gateway.upstream.connection import CatalogHook, Upstream, UpstreamStatus
from gateway.upstream.spec import UpstreamFileError, UpstreamSpec

logger = logging.getLogger(__name__)


class UpstreamPool:
    """All upstreams, supervised in one task group, and the aggregated catalog."""

    def __init__(
        self,
        specs: list[UpstreamSpec],
        *,
        separator: str = "__",
        connect_timeout_s: float = 20.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        probe_interval_s: float = 15.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        servers = [spec.name for spec in specs]
        if len(set(servers)) != len(servers):
            raise UpstreamFileError(f"duplicate upstream names: {sorted(n for n in servers if servers.count(n) > 1)}")
        for name in servers:
            if separator in name:
                raise UpstreamFileError(f"upstream name {name!r} must not contain the separator {separator!r}")
        self.separator = separator
        self.unprefixed = frozenset(spec.name for spec in specs if not spec.prefix)
        self._owner_cache: tuple[tuple[int, ...], dict[str, names.Claim]] | None = None
        env = dict(environ if environ is not None else os.environ)
        self.upstreams = {
            spec.name: Upstream(
                spec,
                connect_timeout_s=connect_timeout_s,
                backoff_initial_s=backoff_initial_s,
                backoff_max_s=backoff_max_s,
                probe_interval_s=probe_interval_s,
                environ=env,
            )
            for spec in specs
        }

    def review_catalogs_with(self, hook: CatalogHook) -> None:
        """Await ``hook`` after every listing of every upstream (tool pinning)."""
        for upstream in self.upstreams.values():
            upstream.on_catalog = hook

    def start(self, tg: TaskGroup) -> None:
        for upstream in self.upstreams.values():
            tg.start_soon(upstream.run, name=f"upstream:{upstream.name}")

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until every upstream is ready (True) or the timeout passes (False)."""
        with anyio.move_on_after(timeout_s):
            for upstream in self.upstreams.values():
                await upstream.wait_until_ready()
            return True
        return False

    # ---- public names: the one mapping (server, upstream tool) <-> public name (gateway/names.py) ----

    def public_name(self, server: str, tool: str) -> str:
        """The name agents see for ``tool`` of ``server`` (prefixed unless mounted with ``prefix: false``)."""
        return names.public_name(server, tool, prefixed=server not in self.unprefixed, separator=self.separator)

    def resolve(self, public_name: str) -> tuple[str, str] | None:
        """(server, upstream tool) serving a public name now; None when unknown or withheld (collision)."""
        claim = self._owners().get(public_name)
        return (claim.server, claim.tool) if claim is not None else None

    def split(self, public_name: str) -> tuple[str, str]:
        """(server, upstream tool) of any name, for the audit of unknown ones: resolved, else by the separator."""
        return self.resolve(public_name) or names.split_offline(public_name, self.separator)

    def collisions(self) -> list[str]:
        """A message per public name more than one upstream claims (the start is refused on any)."""
        return names.collisions(self._claims())

    def refuse_collisions(self) -> None:
        """Raise UpstreamFileError naming both claimants of any public name claimed twice."""
        problems = self.collisions()
        if problems:
            raise UpstreamFileError(
                f"tool name collision ({', '.join(sorted(self.unprefixed))} unprefixed): " + "; ".join(problems)
            )

    def _claims(self) -> dict[str, list[names.Claim]]:
        listed = {upstream.name: list(upstream.tools) for upstream in self.upstreams.values()}
        return names.claims(listed, self.unprefixed, self.separator)

    def _owners(self) -> dict[str, names.Claim]:
        """Public name -> who serves it; rebuilt when any catalog changes (names are part of definitions)."""
        version = self.catalog_version
        if self._owner_cache is None or self._owner_cache[0] != version:
            owners: dict[str, names.Claim] = {}
            for name, contenders in self._claims().items():
                chosen = names.owner(contenders)
                if chosen is not None:
                    owners[name] = chosen
                if len(contenders) > 1:
                    logger.error("tool name collision: %s", names.collisions({name: contenders})[0])
            self._owner_cache = (version, owners)
        return self._owner_cache[1]

    def catalog(self) -> list[CatalogEntry]:
        """Every tool of every ready upstream, under its public name. Down upstreams contribute nothing."""
        found = []
        for public, claim in self._owners().items():
            upstream = self.upstreams[claim.server]
            tool = upstream.tools.get(claim.tool) if upstream.state == "ready" else None
            if tool is not None:
                found.append(self._entry(upstream, tool, public))
        return found

    def entry(self, public_name: str) -> CatalogEntry | None:
        """The catalog entry of a public name, also while its upstream reconnects; None when unknown."""
        resolved = self.resolve(public_name)
        upstream = self.upstreams[resolved[0]] if resolved is not None else None
        tool = upstream.tools.get(resolved[1]) if upstream is not None and resolved is not None else None
        if upstream is None or tool is None:
            return None
        return self._entry(upstream, tool, public_name)

    @property
    def catalog_version(self) -> tuple[int, ...]:
        """Changes whenever any upstream's definitions change."""
        return tuple(upstream.catalog_version for upstream in self.upstreams.values())

    def _entry(self, upstream: Upstream, tool: types.Tool, public_name: str) -> CatalogEntry:
        digest = upstream.hashes.get(tool.name) or definition_hash(tool)
        return CatalogEntry(public_name, upstream, tool, digest)

    def statuses(self) -> list[UpstreamStatus]:
        return [upstream.status() for upstream in self.upstreams.values()]
