"""Pruning the audit log: the only code that deletes audit events.

Owns: deleting a verified prefix of the chain (events older than a time) and, in the same
transaction, storing a signed ``anchor``: the seq and hash of the last deleted event, where the
remaining chain now starts.

Must never: prune a chain that does not verify (that would launder the damage); delete anything
but a prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Table, delete, func, insert, select

from gateway.audit.checkpoints import Signer, checkpoint_row
from gateway.audit.errors import AuditError
from gateway.audit.head import lock_chain
from gateway.audit.verify import verify
from gateway.models import AuditCheckpoint, AuditRecord

_EVENTS: Table = AuditRecord.__table__  # type: ignore[attr-defined]
_CHECKPOINTS: Table = AuditCheckpoint.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class PruneResult:
    deleted: int
    """Events deleted."""
    anchor_seq: int | None
    """seq of the new anchor (the last deleted event); None when no event was old enough."""


def prune(engine: Engine, before: datetime, signer: Signer) -> PruneResult:
    """Delete every event of the chain's prefix older than ``before``, keeping the rest verifiable.

    The prefix ends just before the first event at or after ``before`` (events are pruned
    in seq order, so one late timestamp keeps everything after it). The prefix is
    verified first (a damaged chain is never pruned: that would launder the damage);
    then one transaction stores the signed anchor and deletes the prefix's events and
    checkpoints. Raises ``AuditError`` when the prefix does not verify.
    """
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    events = _EVENTS.c
    with engine.connect() as conn:
        first_kept = conn.execute(select(func.min(events.seq)).where(events.ts >= before)).scalar()
        last = first_kept - 1 if first_kept is not None else conn.execute(select(func.max(events.seq))).scalar()
        oldest = conn.execute(select(func.min(events.seq))).scalar()
    if last is None or oldest is None or last < oldest:
        return PruneResult(0, None)
    report = verify(engine, signer.public, upto=last)
    if not report.ok:
        raise AuditError(f"refusing to prune a chain that does not verify: {report.damage[0]}")
    with engine.begin() as conn:
        lock_chain(conn)  # no writer appends (or signs the head) while the anchor is placed
        stored = conn.execute(select(events.hash).where(events.seq == last)).scalar()
        if stored is None or stored != report.last_hash:
            raise AuditError(f"event {last} changed while pruning; nothing was deleted")
        conn.execute(delete(_CHECKPOINTS).where(_CHECKPOINTS.c.seq <= last))
        conn.execute(insert(_CHECKPOINTS), [checkpoint_row(signer, "anchor", last, stored, 0)])
        deleted = conn.execute(delete(_EVENTS).where(events.seq <= last)).rowcount
    return PruneResult(int(deleted), last)
