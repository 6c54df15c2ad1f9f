"""Where the audit chain ends in the database, and the lock that serializes appends to it.

Owns: ``ChainHead`` (the seq and hash the next event attaches to, and the newest checkpoint's
seq), ``chain_head()`` (read it: the last event, else the prune anchor, else genesis) and
``lock_chain()``.

Several writer processes (gateway workers, replicas) on PostgreSQL: every transaction that
appends to the chain (a batch, a checkpoint of the head, a prune) first takes one
transaction-scoped advisory lock (``lock_chain``: ``pg_advisory_xact_lock(CHAIN_LOCK_KEY)``)
and reads the head under it, so writers append one after another onto the true head and
the chain stays one gap-free chain; the lock is released by the commit itself. It costs
one round trip and three indexed reads per batch, not per event. SQLite has one writer at
a time by construction (its database lock); there the writer's cached head and its
conflict retry remain (``audit/append.py``).

Must never: write a row, or commit (the caller's transaction holds the lock until it commits).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Table, func, select

from gateway.audit.chain import GENESIS_HASH
from gateway.models import AuditCheckpoint, AuditRecord

_EVENTS: Table = AuditRecord.__table__  # type: ignore[attr-defined]
_CHECKPOINTS: Table = AuditCheckpoint.__table__  # type: ignore[attr-defined]

CHAIN_LOCK_KEY = 0x7761_7264_656E_01
"""PostgreSQL advisory lock key serializing appends to the audit chain ("warden" + 1)."""


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where the next event attaches."""

    seq: int
    hash: str
    checkpoint_seq: int
    """seq of the newest checkpoint or anchor (0 for none): the next checkpoint's ``prev_seq``."""


def lock_chain(conn: Connection) -> bool:
    """Take the chain's append lock for the rest of ``conn``'s transaction; False where none is
    needed (SQLite: its write lock serializes writers)."""
    if conn.dialect.name != "postgresql":
        return False
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK_KEY})")
    return True


def chain_head(conn: Connection) -> ChainHead:
    """The last stored event, or the prune anchor when every event after it is gone, or genesis."""
    events, checkpoints = _EVENTS.c, _CHECKPOINTS.c
    last = conn.execute(select(events.seq, events.hash).order_by(events.seq.desc()).limit(1)).first()
    anchor = conn.execute(
        select(checkpoints.seq, checkpoints.hash)
        .where(checkpoints.kind == "anchor")
        .order_by(checkpoints.seq.desc())
        .limit(1)
    ).first()
    checkpoint_seq = int(conn.execute(select(func.coalesce(func.max(checkpoints.seq), 0))).scalar_one())
    candidates = [(int(row[0]), str(row[1])) for row in (last, anchor) if row is not None]
    seq, hash_ = max(candidates) if candidates else (0, GENESIS_HASH)
    return ChainHead(seq, hash_, checkpoint_seq)
