"""Tool pinning: agents only see tool definitions an operator has accepted.

Owns: the ``tool_pins`` table and the in-memory set of accepted definitions the call path
checks (``admits``: a dict lookup, no I/O).

Each listing of an upstream (connect, and every idle-time probe) is reviewed
(``review``, the pool's catalog hook). A definition is keyed by its ``definition_hash``
(``gateway.upstream.catalog.definition_hash``: name, title, description, input and output schema,
annotations). For every listed tool:

- its definition is the accepted one: nothing happens;
- it was never seen: it is recorded ``pending`` (``kind`` ``new``, or ``changed`` when the
  tool had another definition), logged as a warning, and audited (method ``tools/pin``).
  Agents do not see it, and calling it answers like an unknown tool, until an operator
  accepts it (``warden tools accept ID`` or ``POST /admin/tools/{id}/accept``, role admin);
- it was accepted once and replaced since (``superseded``): it is pending again;
- pending or rejected: it stays hidden (already surfaced).

First start (trust on first use): while a server has no pins at all, its first listing is
pinned as accepted (``kind`` ``first``) and audited; with
``tool_pins_trust_first_sight=false`` that listing waits for acceptance too. An upstream
added to the upstreams file later is trusted (or not) the same way on its first listing.

Accepting a definition supersedes the server tool's previously accepted one; rejecting
keeps it hidden. Every decision is audited (``tools/accept``, ``tools/reject``). Decisions
made by the CLI reach a running gateway at its next ``reload`` (every ``poll_s``).

Must never: write audit rows except through ``AuditWriter.record``; let a definition
through that is not accepted (a store failure keeps the last loaded set, which can only
be narrower than the truth for definitions that appeared since).
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
from anyio import to_thread
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from gateway.audit.writer import AuditWriter
from gateway.models import ToolPin, ToolPinPublic, utcnow
from gateway.types import AuditEvent, Effect, canonical_json
from gateway.upstream.catalog import CatalogEntry
from gateway.upstream.connection import Upstream

logger = logging.getLogger(__name__)

PinVerdict = Literal["accept", "reject"]
SYSTEM_IDENTITY = "warden"
"""The identity on audit events the gateway records by itself (pins it took or held back)."""

T = TypeVar("T")


class PinNotFound(LookupError):
    """No pending definition has this id."""


@dataclass(frozen=True, slots=True)
class Finding:
    """A definition a review recorded: trusted at first sight, or held back for an operator."""

    pin: ToolPinPublic


def definition_of(upstream: Upstream, tool: str) -> dict[str, Any]:
    listed = upstream.tools[tool]
    return listed.model_dump(mode="json", by_alias=True, exclude_none=True)


class PinStore:
    """The ``tool_pins`` rows. Synchronous and short; async callers run it in a thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def accepted(self) -> dict[tuple[str, str], str]:
        """(server, tool) -> hash of its accepted definition."""
        with Session(self._engine) as session:
            rows = session.exec(select(ToolPin).where(ToolPin.state == "accepted"))
            return {(row.server, row.tool): row.hash for row in rows}

    def accepted_definitions(self) -> dict[tuple[str, str], ToolPinPublic]:
        """(server, tool) -> its accepted definition, for comparing a changed one against it."""
        with Session(self._engine) as session:
            rows = session.exec(select(ToolPin).where(ToolPin.state == "accepted"))
            return {(row.server, row.tool): row.public() for row in rows}

    def pending(self) -> builtins.list[ToolPinPublic]:
        with Session(self._engine) as session:
            rows = session.exec(select(ToolPin).where(ToolPin.state == "pending").order_by(col(ToolPin.id)))
            return [row.public() for row in rows]

    def observe(self, server: str, listed: dict[str, tuple[str, str]], trust_first: bool) -> builtins.list[Finding]:
        """Record the definitions of one listing (tool -> (hash, definition JSON)); return the new findings."""
        with Session(self._engine, expire_on_commit=False) as session:
            known = builtins.list(session.exec(select(ToolPin).where(ToolPin.server == server)))
            by_key = {(row.tool, row.hash): row for row in known}
            tools_seen = {row.tool for row in known}
            first = not known and trust_first
            changed: builtins.list[ToolPin] = []
            for tool, (digest, definition) in sorted(listed.items()):
                row = by_key.get((tool, digest))
                if row is None:
                    kind = "first" if first else ("changed" if tool in tools_seen else "new")
                    row = ToolPin(server=server, tool=tool, hash=digest, definition=definition, kind=kind)
                    row.state = "accepted" if first else "pending"
                    session.add(row)
                elif row.state == "superseded":
                    row.state, row.kind, row.decided_at, row.decided_by = "pending", "changed", None, None
                    session.add(row)
                else:
                    continue
                changed.append(row)
            session.commit()
            return [Finding(row.public()) for row in changed]

    def decide(self, pin_id: int, verdict: PinVerdict, decider: str) -> ToolPinPublic:
        """Accept (superseding the tool's accepted definition) or reject a pending definition."""
        now = utcnow()
        with Session(self._engine, expire_on_commit=False) as session:
            row = session.get(ToolPin, pin_id)
            if row is None or row.state != "pending":
                raise PinNotFound(f"no pending tool definition with id {pin_id}")
            if verdict == "accept":
                session.execute(
                    update(ToolPin)
                    .where(col(ToolPin.server) == row.server, col(ToolPin.tool) == row.tool)
                    .where(col(ToolPin.state) == "accepted")
                    .values(state="superseded")
                )
            row.state = "accepted" if verdict == "accept" else "rejected"
            row.decided_at, row.decided_by = now, decider
            session.add(row)
            session.commit()
            return row.public()


class ToolPins:
    """The running gateway's side: reviews listings, answers ``admits``, applies decisions."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditWriter,
        *,
        trust_first_sight: bool,
        poll_s: float,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = PinStore(engine)
        self.audit = audit
        self.trust_first_sight = trust_first_sight
        self.poll_s = poll_s
        self._accepted: dict[tuple[str, str], str] = {}
        self.on_change = on_change
        """Called when what agents may see may have changed (a reviewed listing, new acceptances)."""

    def admits(self, entry: CatalogEntry) -> bool:
        """Whether agents may see and call this entry: its listed definition is the accepted one."""
        return self._accepted.get((entry.server, entry.tool.name)) == entry.definition_hash

    async def reload(self) -> None:
        accepted = await _run(self.store.accepted)
        changed = accepted != self._accepted
        self._accepted = accepted
        if changed:
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def review(self, upstream: Upstream) -> None:
        """The pool's catalog hook: record what this listing shows for the first time."""
        listed = {
            name: (digest, canonical_json(definition_of(upstream, name))) for name, digest in upstream.hashes.items()
        }
        findings = await _run(self.store.observe, upstream.name, listed, self.trust_first_sight)
        for finding in findings:
            await self._surface(finding.pin)
        await self.reload()
        self._changed()  # the listing itself may have added or removed visible tools

    async def decide(self, pin_id: int, verdict: PinVerdict, decider: str) -> ToolPinPublic:
        """Accept or reject a pending definition as ``decider``; audited before it applies."""
        pending = {pin.id: pin for pin in await _run(self.store.pending)}
        if pin_id not in pending:
            raise PinNotFound(f"no pending tool definition with id {pin_id}")
        pin = pending[pin_id]
        effect: Effect = "allow" if verdict == "accept" else "deny"
        await self.audit.record(_event(pin, f"tools/{verdict}", decider, effect, f"{verdict}ed by {decider}"))
        decided = await _run(self.store.decide, pin_id, verdict, decider)
        await self.reload()
        return decided

    async def reload_forever(self) -> None:
        """Pick up decisions made elsewhere (the CLI writes the database directly)."""
        while True:
            await anyio.sleep(self.poll_s)
            try:
                await self.reload()
            except Exception:  # boundary: keep the last accepted set; it only lacks newer acceptances
                logger.exception("tool pins: reloading accepted definitions failed")

    async def _surface(self, pin: ToolPinPublic) -> None:
        public = f"{pin.server}/{pin.tool}"
        if pin.state == "accepted":
            reason = f"{public} pinned at first sight (trust on first use)"
            await self.audit.record(_event(pin, "tools/pin", SYSTEM_IDENTITY, "allow", reason))
            return
        reason = (
            f"{pin.kind} definition of {public} held back from agents until an operator accepts it "
            f"(`warden tools accept {pin.id}`)"
        )
        logger.warning("tool pin %s: %s (hash %s)", pin.id, reason, pin.hash[:12])
        await self.audit.record(_event(pin, "tools/pin", SYSTEM_IDENTITY, "approve", reason))


def _event(pin: ToolPinPublic, method: str, identity: str, effect: Effect, reason: str) -> AuditEvent:
    return AuditEvent(
        call_id=uuid.uuid4().hex,
        phase="decision",
        method=method,
        identity=identity,
        server=pin.server,
        tool=pin.tool,
        arguments={"pin_id": pin.id, "definition_hash": pin.hash, "kind": pin.kind},
        effect=effect,
        rule_ids=(f"tool-pin:{pin.id}",),
        reason=reason,
    )


async def _run(fn: Callable[..., T], *args: Any) -> T:
    return await to_thread.run_sync(fn, *args)
