"""Resources through the gateway: resources/list, resources/templates/list and resources/read.

Owns: the lists one identity sees (every ready upstream's resources and templates under
public URIs, ``gateway.uris``, filtered by its resource grants, in client-facing pages) and
a read: resolve the public URI to an upstream and its own URI, normalise it the way policy
matches it (what was checked is what is read), decide, then deny, hold or forward through
the call pipeline (``gateway.forwarding``), and answer with every URI in the contents made
public again. A read is audited like a tool call (method ``resources/read``, ``tool`` = the
upstream URI), with the size and sha256 of the contents.

A URI the identity may not read, a URI no upstream owns, and a read the upstream refuses
all get one and the same answer (``answers.unknown_resource``, code -32002); the audit log
keeps which it was.

Must never: forward a read whose decision is not committed, or read a different URI
upstream than the one policy checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway import answers, cursor, uris
from gateway.forwarding import RESOURCE_NOT_FOUND, Refused, mark_unknown, new_id, nowhere, run, sent
from gateway.policy.uri import normalise_uri
from gateway.proxy.context import Sent
from gateway.proxy.pipeline import Proxy
from gateway.types import AuditEvent, Caller, ClientFeatures, Identity, ToolCall
from gateway.upstream.connection import Upstream

T = TypeVar("T")


def paged(items: Sequence[T], given: str | None, size: int) -> tuple[list[T], str | None]:
    """One client-facing page (``gateway.cursor``); a cursor the gateway did not hand out is -32602."""
    try:
        return cursor.page(items, given, size)
    except cursor.BadCursor:
        raise MCPError(types.INVALID_PARAMS, answers.BAD_CURSOR) from None


@dataclass(frozen=True, slots=True)
class Target:
    """Where a public URI goes: the upstream and its own URI, normalised as policy matched it."""

    public: str
    upstream: Upstream
    uri: str


class Resources:
    def __init__(self, proxy: Proxy, *, page_size: int = 100) -> None:
        self.proxy = proxy
        self.pool = proxy.pool
        self.page_size = page_size

    def identity(self, name: str) -> Identity:
        policy = self.proxy.policies.current
        return Identity(name, policy.roles_of(name))

    def granted(self, identity: Identity, upstream: Upstream, uri: str) -> bool:
        return self.proxy.policies.current.is_granted(identity, uri, "resource", server=upstream.name)

    # ---- lists ---------------------------------------------------------------------------

    def visible(self, identity: Identity) -> list[types.Resource]:
        return [
            resource.model_copy(update={"uri": uris.public_uri(upstream, resource.uri)})
            for upstream in self._ready()
            for resource in upstream.offerings.resources
            if self.granted(identity, upstream, resource.uri)
        ]

    def visible_templates(self, identity: Identity) -> list[types.ResourceTemplate]:
        return [
            template.model_copy(update={"uri_template": uris.public_uri(upstream, template.uri_template)})
            for upstream in self._ready()
            for template in upstream.offerings.templates
            if self.granted(identity, upstream, template.uri_template)
        ]

    async def list_resources(self, identity_name: str, cursor: str | None) -> types.ListResourcesResult:
        items, next_cursor = self._page(self.visible(self.identity(identity_name)), cursor)
        await self.record_list("resources/list", identity_name, len(items))
        return types.ListResourcesResult(resources=items, next_cursor=next_cursor)

    async def list_templates(self, identity_name: str, cursor: str | None) -> types.ListResourceTemplatesResult:
        items, next_cursor = self._page(self.visible_templates(self.identity(identity_name)), cursor)
        await self.record_list("resources/templates/list", identity_name, len(items))
        return types.ListResourceTemplatesResult(resource_templates=items, next_cursor=next_cursor)

    def _ready(self) -> list[Upstream]:
        return [u for u in self.pool.upstreams.values() if u.state == "ready"]

    def _page(self, items: Sequence[T], given: str | None) -> tuple[list[T], str | None]:
        return paged(items, given, self.page_size)

    async def record_list(self, method: str, identity_name: str, count: int) -> None:
        """One audit event per list answer (like tools/list): who listed what, and how many items it saw."""
        event = AuditEvent(
            call_id=new_id(),
            phase="decision",
            method=method,
            identity=identity_name,
            effect="allow",
            reason=f"{count} visible",
            outcome="ok",
        )
        await self.proxy.audit.record(event)

    # ---- resources/read ------------------------------------------------------------------

    def target(self, public: str) -> Target | None:
        """The upstream and normalised upstream URI of a public URI; None when no upstream owns it."""
        resolved = uris.resolve(self.pool, public)
        uri = normalise_uri(resolved[1]) if resolved is not None else None
        if resolved is None or uri is None:
            return None
        return Target(public, resolved[0], uri)

    async def read(
        self,
        caller: Caller,
        public: str,
        *,
        request_ref: str | None = None,
        client: ClientFeatures = ClientFeatures(),
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        """One resources/read, through the pipeline; raises MCPError for every refusal."""
        unknown = Refused(RESOURCE_NOT_FOUND, answers.unknown_resource(public))
        target = self.target(public)
        if target is None:  # audited as denied, answered like any resource the identity cannot read
            call = ToolCall(public, "", public[:256], {"uri": public}, new_id(), kind="resource")
            ctx = await self.proxy.context(caller, call, nowhere, method="resources/read", request_ref=request_ref)
            mark_unknown(ctx, "unknown-resource", "no such resource")
            return await run(self.proxy, ctx, unknown)
        upstream, uri = target.upstream, target.uri
        call = ToolCall(public, upstream.name, uri, {"uri": uri}, new_id(), kind="resource")

        async def send(timeout_s: float) -> Sent:
            return await sent(
                lambda: upstream.send(lambda c: c.read_resource(uri), timeout_s),
                server=upstream.name,
                contents=lambda result: result.contents,
                refused=unknown,
            )

        ctx = await self.proxy.context(
            caller, call, send, method="resources/read", request_ref=request_ref, client=client
        )
        result = await run(self.proxy, ctx, unknown)
        if isinstance(result, types.ReadResourceResult):
            return uris.rewrite(upstream, result)
        return result
