"""The audit log: its only writer, its hash chain, and small read helpers.

Owns: turning ``AuditEvent`` values into stored, redacted, hash-chained rows of
``audit_events``. ``AuditWriter`` is the ONLY code that inserts into that table.

How a write works (group commit): ``record()`` enqueues the event and waits. One
dedicated writer thread takes everything queued (up to ``batch_max``), redacts the
arguments (policy fields plus secret shapes) and the error and reason texts, numbers
each row (``seq`` = previous + 1) and chains it to its predecessor (``hash =
sha256(prev_hash + canonical JSON of the row's fields, seq included)``), inserts the
batch in ONE transaction and commits. Only then are the callers' futures resolved
with their ``seq``. If the transaction fails, every caller of that batch gets
``AuditError`` (the gateway then denies the call: fail closed) and the chain head is
reloaded from the database before the next batch, so a failed batch never leaves a
gap in the chain.

The writer assigns ``seq`` itself rather than letting the database pick it, so the
primary key keeps the chain linear: should a second writer (another process) have
taken those numbers meanwhile, the insert conflicts instead of forking the chain; the
writer then reloads the head and retries the batch once.

Must never: write anything but audit rows; store unredacted arguments or error text;
resolve a caller before its row is committed; swallow a database error.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from gateway.models import AuditRecord
from gateway.redact import redact, redact_text
from gateway.types import AuditEvent, canonical_json

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first record."""

HASHED_FIELDS = (
    "seq", "call_id", "phase", "method", "ts", "identity", "server", "tool", "arguments", "args_hash", "effect",
    "rule_ids", "reason", "outcome", "error", "approval_id", "latency_policy_ms", "latency_upstream_ms",
    "latency_total_ms", "request_ref", "version",
)  # fmt: skip
"""Fields covered by ``hash`` (record version 1): every column except prev_hash and hash."""

_TABLE: Table = AuditRecord.__table__  # type: ignore[attr-defined]


class AuditError(Exception):
    """An audit record could not be committed. The gateway must deny the call."""


def chain_hash(prev_hash: str, fields: Mapping[Any, Any]) -> str:
    """The hash of one record from its predecessor's hash and its stored field values."""
    hashed = {name: fields[name] for name in HASHED_FIELDS}
    ts = hashed["ts"]
    hashed["ts"] = ts.astimezone(UTC).isoformat() if isinstance(ts, datetime) else ts
    return hashlib.sha256((prev_hash + canonical_json(hashed)).encode()).hexdigest()


def _row(event: AuditEvent, redact_fields: frozenset[str], seq: int, prev_hash: str) -> dict[str, Any]:
    """The stored, redacted, chained form of ``event``."""
    ts = event.ts or datetime.now(UTC)
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    row: dict[str, Any] = {
        "seq": seq,
        "call_id": event.call_id,
        "phase": event.phase,
        "method": event.method,
        "ts": ts,
        "identity": event.identity,
        "server": event.server,
        "tool": event.tool,
        "arguments": canonical_json(redact(event.arguments, redact_fields)),
        "args_hash": event.args_hash,
        "effect": event.effect,
        "rule_ids": canonical_json(list(event.rule_ids)),
        "reason": redact_text(event.reason),
        "outcome": event.outcome,
        "error": redact_text(event.error),
        "approval_id": event.approval_id,
        # Floats as stored: an int latency would read back as 5.0 and change the hash.
        "latency_policy_ms": _float(event.latency_policy_ms),
        "latency_upstream_ms": _float(event.latency_upstream_ms),
        "latency_total_ms": _float(event.latency_total_ms),
        "request_ref": event.request_ref,
        "version": int(event.version),
        "prev_hash": prev_hash,
    }
    row["hash"] = chain_hash(prev_hash, row)
    return row


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _chain_head(engine: Engine) -> tuple[int, str]:
    """``(seq, hash)`` of the last stored record, or ``(0, GENESIS_HASH)``."""
    with engine.connect() as conn:
        last = conn.execute(select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1)).first()
    return (0, GENESIS_HASH) if last is None else (int(last[0]), str(last[1]))


@dataclass(slots=True)
class _Queued:
    event: AuditEvent
    redact_fields: frozenset[str]
    future: asyncio.Future[int]


_STOP = None


class AuditWriter:
    """The single writer of ``audit_events``: ``await record(event)`` returns once it is durable."""

    def __init__(self, engine: Engine, batch_max: int = 512) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        self._engine = engine
        self._batch_max = batch_max
        self._head: tuple[int, str] | None = None  # (seq, hash); touched only by the writer thread once started
        self._queue: asyncio.Queue[_Queued | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._accepting = False

    async def start(self) -> None:
        """Load the chain head and start the writer. Raises ``AuditError`` if the database is unusable."""
        if self._task is not None:
            raise RuntimeError("audit writer already started")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warden-audit")
        loop = asyncio.get_running_loop()
        try:
            self._head = await loop.run_in_executor(self._executor, _chain_head, self._engine)
        except Exception as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise AuditError(f"cannot read the audit chain head: {redact_text(str(exc))}") from exc
        self._queue = asyncio.Queue()
        self._accepting = True
        self._task = asyncio.create_task(self._run(), name="warden-audit-writer")

    async def stop(self) -> None:
        """Stop accepting events, commit everything already queued, then stop the writer."""
        if self._task is None or self._queue is None:
            return
        self._accepting = False
        self._queue.put_nowait(_STOP)
        await self._task
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def record(self, event: AuditEvent, redact_fields: frozenset[str] = frozenset()) -> int:
        """Store ``event`` (redacted, chained); return its ``seq`` after the commit. Raises ``AuditError``."""
        if not self._accepting or self._queue is None:
            raise AuditError("audit writer is not running")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Queued(event, redact_fields, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        stopping = False
        while not stopping:
            batch: list[_Queued] = []
            item = await self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= self._batch_max or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Queued]) -> None:
        loop = asyncio.get_running_loop()
        try:
            seqs = await loop.run_in_executor(self._executor, self._write, batch)
        except Exception as exc:
            message = f"audit commit failed: {redact_text(str(exc))}"
            for queued in batch:
                if not queued.future.done():
                    error = AuditError(message)
                    error.__cause__ = exc
                    queued.future.set_exception(error)
            return
        for queued, seq in zip(batch, seqs, strict=True):
            if not queued.future.done():  # a caller may have been cancelled; its row is stored anyway
                queued.future.set_result(seq)

    def _write(self, batch: list[_Queued]) -> list[int]:
        """Runs on the writer thread: redact, number, chain, insert and commit one batch."""
        try:
            try:
                return self._insert(batch)
            except IntegrityError:  # another writer took these seqs: chain onto its rows, once
                self._head = None
                return self._insert(batch)
        except BaseException:
            self._head = None  # unknown state: reload the head from the database next time
            raise

    def _insert(self, batch: list[_Queued]) -> list[int]:
        seq, prev = self._head if self._head is not None else _chain_head(self._engine)
        rows = []
        for queued in batch:
            seq += 1
            row = _row(queued.event, queued.redact_fields, seq, prev)
            rows.append(row)
            prev = row["hash"]
        with self._engine.begin() as conn:
            conn.execute(insert(_TABLE), rows)
        self._head = (seq, prev)
        return [row["seq"] for row in rows]


def fetch_events(engine: Engine, call_id: str | None = None, limit: int = 100) -> list[AuditRecord]:
    """The newest ``limit`` records (of one call, if given), oldest first. For tests and operators."""
    query = select(AuditRecord)
    if call_id is not None:
        query = query.where(col(AuditRecord.call_id) == call_id)
    query = query.order_by(col(AuditRecord.seq).desc()).limit(limit)
    with Session(engine) as session:
        records = list(session.scalars(query))
    records.reverse()
    return records


def verify_chain(engine: Engine) -> int | None:
    """The ``seq`` of the first record whose link or hash is wrong, or None when the chain holds."""
    prev = GENESIS_HASH
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=1000).execute(select(_TABLE).order_by(_TABLE.c.seq))
        for row in rows.mappings():
            if row["prev_hash"] != prev or row["hash"] != chain_hash(prev, row):
                return int(row["seq"])
            prev = row["hash"]
    return None
