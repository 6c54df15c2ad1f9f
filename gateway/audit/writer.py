"""The audit log: its only writer, its signed checkpoints, and its pruning.

Owns: turning ``AuditEvent`` values into stored, redacted, hash-chained rows of
``audit_events``, and every other change to the audit tables. ``AuditWriter`` is the
ONLY code that inserts audit events; ``prune`` is the only code that deletes them.
Reading is elsewhere: ``audit/query.py`` (filters, export), ``audit/verify.py``.

How a write works (group commit): ``record()`` redacts the event (the arguments: policy
fields plus secret shapes; the error and reason texts) and serializes it, enqueues it
and waits; that CPU work runs on the caller's loop while the previous batch commits.
One dedicated writer thread takes everything queued (up to ``batch_max``), numbers
each row (``seq`` = previous + 1) and chains it to its predecessor (``hash =
sha256(prev_hash + canonical JSON of the row's fields, seq included)``, see
``audit/chain.py``), inserts the batch in ONE transaction (straight through the DBAPI,
see ``_Inserter``) and commits. Only then are the callers' futures resolved with their
``seq``. ``record()`` first makes the event storable by itself (``audit/storable.py``:
invalid characters, over-long identifiers, deep nesting, size caps), so what one caller
sent cannot fail a batch. Should the database still refuse a transaction, the batch is
split in halves and retried down to single events, so only the refused event's caller
gets ``AuditError`` (the gateway then denies that call: fail closed); a failure of the
database itself (``OperationalError``) fails the batch whole. The chain head is reloaded
after any failure, so a failed batch never leaves a gap in the chain. ``AuditError``'s
text never carries the database's (which names other rows); that goes, redacted and cut
to its first line, to the operator log.

With a signing key, every ``checkpoint_every``-th event also gets a signed checkpoint
row (``checkpoints.py``), written in the same transaction as the event it covers; so does
the newest event once ``checkpoint_interval_s`` passed (also when idle), the head at
start (the empty log's genesis, seq 0, too) and the head at shutdown.

The writer assigns ``seq`` itself rather than letting the database pick it, so the
primary key keeps the chain linear: should a second writer (another process) have
taken those numbers meanwhile, the insert conflicts instead of forking the chain; the
writer then reloads the head and retries the batch once.

Several writer processes (gateway workers, replicas) on PostgreSQL: every transaction that
appends to the chain (a batch, a checkpoint of the head, a prune) first takes one
transaction-scoped advisory lock (``lock_chain``: ``pg_advisory_xact_lock(CHAIN_LOCK_KEY)``)
and reads the head under it, so writers append one after another onto the true head and
the chain stays one gap-free chain; the lock is released by the commit itself. It costs
one round trip and three indexed reads per batch, not per event. SQLite has one writer at
a time by construction (its database lock); there the cached head and the conflict retry
above remain.

Pruning deletes a prefix of the chain (events older than a time) after verifying it,
and in the same transaction stores a signed ``anchor``: the seq and hash of the last
deleted event, where the remaining chain now starts.

With ``async_outcome`` (off by default; ``audit_async_outcome``) the outcome of a call whose
decision is committed is queued without waiting (``record_outcome``): the answer goes out one
commit earlier, and a crash before the next commit loses that outcome row (the decision row
still shows the call ran). Decisions are always awaited.

Must never: write anything but audit rows; store unredacted arguments or error text;
resolve a caller before its row is committed (``submit`` has no caller to resolve); swallow a database error; prune a
chain that does not verify.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine, Table, func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.audit.chain import GENESIS_HASH, HASHED_FIELDS, canonical_encoder, chain_hash, hash_ts, hashed_names
from gateway.audit.checkpoints import Signer, checkpoint_row
from gateway.audit.storable import TEXT_MAX_CHARS, arguments_document, clean_text, fit, storable_field
from gateway.models import AuditCheckpoint, AuditRecord
from gateway.redact import redact_secret_values, redact_text
from gateway.types import AuditEvent

logger = logging.getLogger(__name__)

__all__ = ["GENESIS_HASH", "AuditError", "AuditWriter", "ChainHead", "StorageLimits", "chain_hash"]

_EVENTS: Table = AuditRecord.__table__  # type: ignore[attr-defined]
_CHECKPOINTS: Table = AuditCheckpoint.__table__  # type: ignore[attr-defined]
_COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
_TS = HASHED_FIELDS.index("ts")
_SEQ_KEY = '"seq":'
_ENCODE = canonical_encoder()
_LENGTHS: dict[str, int | None] = {c.name: getattr(c.type, "length", None) for c in _EVENTS.c}


class AuditError(Exception):
    """An audit record could not be committed (or a prune refused). The gateway must deny the call.

    Its text is safe to show to anyone: it never carries database exception text (which
    names other rows: other identities' calls). The details go to the operator log.
    """


@dataclass(frozen=True, slots=True)
class StorageLimits:
    """How much of one event's arguments is stored (see ``audit/storable.py``)."""

    args_max_bytes: int = 65536
    """An argument document larger than this is stored as sha256 + a preview of this many bytes."""
    denied_args_preview_bytes: int = 1024
    """The same for denied calls: they keep at most this many bytes of their arguments."""


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where the next event attaches."""

    seq: int
    hash: str
    checkpoint_seq: int
    """seq of the newest checkpoint or anchor (0 for none): the next checkpoint's ``prev_seq``."""


CHAIN_LOCK_KEY = 0x7761_7264_656E_01
"""PostgreSQL advisory lock key serializing appends to the audit chain ("warden" + 1)."""


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


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An event made storable before it has a place in the chain: redacted and serialized.

    ``head`` and ``tail`` are the canonical JSON of its hashed fields split around the
    value of ``seq``, so chaining it costs one sha256: ``sha256(prev + head + seq + tail)``
    (the same text ``chain_hash`` hashes). ``values`` are its columns after ``seq`` and
    before ``prev_hash``, as the driver stores them.
    """

    values: tuple[Any, ...]
    head: str
    tail: str

    def chained(self, seq: int, prev_hash: str) -> tuple[tuple[Any, ...], str]:
        """The row to insert at ``seq`` after ``prev_hash``, and its hash."""
        digest = hashlib.sha256(f"{prev_hash}{self.head}{seq}{self.tail}".encode()).hexdigest()
        return (seq, *self.values, prev_hash, digest), digest


@lru_cache(maxsize=1024)
def _rule_ids_json(rule_ids: tuple[str, ...]) -> str:
    return _ENCODE(list(rule_ids))


@lru_cache(maxsize=4096)
def _redacted_reason(reason: str) -> str:
    """Reasons come from policy files and repeat: redact each distinct one once."""
    return redact_text(reason)


def _sqlite_ts(ts: datetime) -> str:
    """How SQLAlchemy stores a DATETIME on SQLite (its default storage format), written directly."""
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031  # the fastest spelling
        ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second, ts.microsecond,
    )  # fmt: skip


def _texts(event: AuditEvent, redact_fields: frozenset[str], notes: list[str]) -> tuple[str, str]:
    """The reason and error as stored: redacted (also of the arguments' secret values), storable."""
    reason = _redacted_reason(event.reason)
    error = redact_text(event.error) if event.error else ""
    if error or (reason and redact_fields):  # errors echo arguments: a redacted value must not survive there
        error = redact_secret_values(error, event.arguments, redact_fields)
        reason = redact_secret_values(reason, event.arguments, redact_fields)
    return storable_field("reason", reason, None, notes), storable_field("error", error, None, notes)


def _prepare(
    event: AuditEvent, redact_fields: frozenset[str], store_ts: Callable[[Any], Any], limits: StorageLimits
) -> _Prepared:
    """Redact, make storable (``audit/storable.py``) and serialize ``event`` (its time defaults to now).

    CPU only; no chain state. Never fails for what the caller sent: every change made to
    store it is noted at the end of the stored ``error``.
    """
    ts = event.ts or datetime.now(UTC)
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    notes: list[str] = []

    def column(name: str, value: str | None) -> str | None:
        return None if value is None else storable_field(name, value, _LENGTHS[name], notes)

    limit = limits.denied_args_preview_bytes if event.effect == "deny" else limits.args_max_bytes
    arguments = arguments_document(event.arguments, redact_fields, limit, notes)
    request_ref = None if event.request_ref is None else column("request_ref", redact_text(event.request_ref))
    reason, error = _texts(event, redact_fields, notes)
    fields: dict[str, Any] = {  # in HASHED_FIELDS order
        "seq": 0,
        "call_id": column("call_id", event.call_id),
        "phase": column("phase", event.phase),
        "method": column("method", event.method),
        "ts": hash_ts(ts),
        "identity": column("identity", event.identity),
        "server": column("server", event.server),
        "tool": column("tool", event.tool),
        "arguments": arguments,
        "args_hash": column("args_hash", event.args_hash),
        "effect": column("effect", event.effect),
        "rule_ids": _rule_ids_json(tuple(clean_text(r) for r in event.rule_ids)),
        "reason": reason,
        "outcome": column("outcome", event.outcome),
        "error": error,
        "approval_id": column("approval_id", event.approval_id),
        # Floats as stored: an int latency would read back as 5.0 and change the hash.
        "latency_policy_ms": _float(event.latency_policy_ms),
        "latency_upstream_ms": _float(event.latency_upstream_ms),
        "latency_total_ms": _float(event.latency_total_ms),
        "request_ref": request_ref,
        "version": int(event.version),
        "risk": event.risk,
        "content_bytes": event.content_bytes,
        "content_sha256": column("content_sha256", event.content_sha256),
    }
    if notes:  # every change made to store the event, for the auditor
        fields["error"] = fit(f"{error}\n[audit: {'; '.join(notes)}]".lstrip("\n"), TEXT_MAX_CHARS)
    names = hashed_names(event.version, fields)
    text = _ENCODE(fields if len(names) == len(fields) else {k: fields[k] for k in names})
    # Only a top-level key can read '"seq":' (a quote inside a JSON string is escaped).
    at = text.index(_SEQ_KEY) + len(_SEQ_KEY)
    values = list(fields.values())
    values[_TS] = store_ts(ts)
    return _Prepared(tuple(values[1:]), text[:at], text[at + 1 :])


class _Inserter:
    """Inserts rows of ``audit_events`` as positional tuples straight through the DBAPI: the same
    stored values as a SQLAlchemy insert, without its per-row type processing.

    SQLite gets multi-row ``INSERT ... VALUES (...), (...)`` statements of up to
    ``ROWS_PER_STATEMENT`` rows: its driver releases the GIL around every statement it runs,
    and each reacquisition waits for the busy event loop, so one statement per row (plain
    ``executemany``) would spend most of its time waiting. Other drivers get ``executemany``
    of a one-row statement (psycopg pipelines it; a long multi-row text would be re-parsed
    on every call).
    """

    ROWS_PER_STATEMENT = 64

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if mark is None:
            raise RuntimeError(f"unsupported DBAPI paramstyle {dialect.paramstyle!r}")
        self._multi_row = dialect.name == "sqlite"
        self._row_marks = f"({', '.join([mark] * len(_COLUMNS))})"
        self._sql: dict[int, str] = {}
        processor = _EVENTS.c.ts.type.dialect_impl(dialect).bind_processor(dialect)
        self.store_ts: Callable[[Any], Any] = processor if processor is not None else (lambda value: value)
        if dialect.name == "sqlite":
            self.store_ts = _sqlite_ts

    def _statement(self, rows: int) -> str:
        sql = self._sql.get(rows)
        if sql is None:
            values = ", ".join([self._row_marks] * rows)
            sql = self._sql[rows] = f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) VALUES {values}"
        return sql

    def insert(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not self._multi_row:
            conn.exec_driver_sql(self._statement(1), rows)
            return
        step = self.ROWS_PER_STATEMENT
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            conn.exec_driver_sql(self._statement(len(part)), tuple(chain.from_iterable(part)))


@dataclass(slots=True)
class _Queued:
    prepared: _Prepared
    future: asyncio.Future[int]


class AuditWriter:
    """The single writer of ``audit_events``: ``await record(event)`` returns once it is durable."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_max: int = 512,
        signer: Signer | None = None,
        checkpoint_every: int = 1000,
        checkpoint_interval_s: float = 60.0,
        limits: StorageLimits = StorageLimits(),
        async_outcome: bool = False,
    ) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if checkpoint_interval_s <= 0:
            raise ValueError("checkpoint_interval_s must be positive")
        self._engine = engine
        self._batch_max = batch_max
        self._signer = signer
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval_s = checkpoint_interval_s
        self._last_checkpoint = time.monotonic()  # writer thread only, once started
        self._limits = limits
        self._async_outcome = async_outcome
        self._inserter = _Inserter(engine)
        self._head: ChainHead | None = None  # touched only by the writer thread once started
        self._pending: deque[_Queued] = deque()
        self._wakeup = asyncio.Event()  # made again by start(): an Event binds to the loop that uses it
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._accepting = False
        self._stopping = False

    async def start(self) -> None:
        """Load the chain head and start the writer. Raises ``AuditError`` if the database is unusable."""
        if self._task is not None:
            raise RuntimeError("audit writer already started")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warden-audit")
        loop = asyncio.get_running_loop()
        try:
            self._head = await loop.run_in_executor(self._executor, self._load_head)
            if self._signer is not None:  # the tail a previous run left unsigned, or the empty log's genesis
                await loop.run_in_executor(self._executor, self._checkpoint_head, True)
        except Exception as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            logger.error("audit: cannot start the writer: %s", redact_text(str(exc)))
            raise AuditError("cannot read the audit chain head (see the gateway log)") from exc
        self._wakeup = asyncio.Event()
        self._accepting, self._stopping = True, False
        self._task = asyncio.create_task(self._run(), name="warden-audit-writer")

    async def stop(self) -> None:
        """Stop accepting events, commit everything already queued, then stop the writer."""
        if self._task is None:
            return
        self._accepting, self._stopping = False, True
        self._wakeup.set()
        await self._task
        self._task = None
        if self._executor is not None and self._signer is not None:  # sign the tail at shutdown
            await asyncio.get_running_loop().run_in_executor(self._executor, self._checkpoint_head, False)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def record(self, event: AuditEvent, redact_fields: frozenset[str] = frozenset()) -> int:
        """Store ``event`` (redacted, chained); return its ``seq`` after the commit. Raises ``AuditError``."""
        if not self._accepting:
            raise AuditError("audit writer is not running")
        try:  # here, not on the writer thread: it runs beside the previous batch's commit
            prepared = _prepare(event, redact_fields, self._inserter.store_ts, self._limits)
        except Exception as exc:  # a bug in making it storable: this event only
            logger.error("audit: event of call %r cannot be stored: %s", event.call_id, _detail(exc))
            raise AuditError("the audit log could not store this event") from None
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(_Queued(prepared, future))
        self._wakeup.set()
        return await future

    async def record_outcome(
        self, event: AuditEvent, redact_fields: frozenset[str], on_failure: Callable[[], None]
    ) -> None:
        """Store the outcome of a call whose decision is committed: awaited like ``record``, or with
        ``async_outcome`` queued for the next grouped commit without waiting (``submit``)."""
        if self._async_outcome:
            self.submit(event, redact_fields, on_failure)
        else:
            await self.record(event, redact_fields)

    def submit(
        self,
        event: AuditEvent,
        redact_fields: frozenset[str] = frozenset(),
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        """Queue ``event`` for the next grouped commit without waiting for it (asynchronous outcomes).

        The row is committed like any other, just after the caller moved on; ``stop()`` still
        commits it. A failure is logged and reported to ``on_failure``. Only for events whose
        loss on a crash is acceptable: never a decision (that is committed before forwarding).
        """
        if not self._accepting:
            raise AuditError("audit writer is not running")
        prepared = _prepare(event, redact_fields, self._inserter.store_ts, self._limits)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def settled(done: asyncio.Future[int]) -> None:
            if done.exception() is not None and on_failure is not None:
                on_failure()

        future.add_done_callback(settled)
        self._pending.append(_Queued(prepared, future))
        self._wakeup.set()

    async def _run(self) -> None:
        pending = self._pending
        loop = asyncio.get_running_loop()
        while True:
            if not pending:
                if self._stopping:
                    return
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self._checkpoint_interval_s)
                except TimeoutError:  # idle: sign the tail so it is not left unprotected
                    if self._signer is not None:
                        await loop.run_in_executor(self._executor, self._checkpoint_head, False)
                continue
            batch = [pending.popleft() for _ in range(min(len(pending), self._batch_max))]
            await self._commit(batch)

    async def _commit(self, batch: list[_Queued]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self._write, batch)
        except BaseException as exc:  # the writer thread itself failed (not one batch): fail them all
            results = [exc] * len(batch)
        for queued, result in zip(batch, results, strict=True):
            if queued.future.done():  # a caller may have been cancelled; its row is stored anyway
                continue
            if isinstance(result, BaseException):
                # No __cause__: a traceback of it would print the database's text (every row of the batch);
                # the writer logged a redacted first line of it already.
                queued.future.set_exception(AuditError("the audit log could not commit this event"))
            else:
                queued.future.set_result(result)

    def _load_head(self) -> ChainHead:
        with self._engine.connect() as conn:
            return chain_head(conn)

    def _write(self, batch: list[_Queued]) -> list[int | BaseException]:
        """Runs on the writer thread: number, chain, insert and commit one batch; per event, its seq
        or why it failed.

        A batch that fails is split in halves and each retried, down to single events, so one
        event the database refuses fails alone and never another identity's. A failure of the
        database itself (``OperationalError``: unreachable, locked) fails the batch without
        splitting it.
        """
        try:
            return list(self._insert_once_more(batch))
        except OperationalError as exc:
            logger.error("audit: commit of %d events failed: %s", len(batch), _detail(exc))
            return [exc] * len(batch)
        except Exception as exc:
            if len(batch) == 1:
                logger.error("audit: event of call %r refused by the database: %s", _call_id(batch[0]), _detail(exc))
                return [exc]
            half = len(batch) // 2
            return self._write(batch[:half]) + self._write(batch[half:])

    def _insert_once_more(self, batch: list[_Queued]) -> range:
        try:
            try:
                return self._insert(batch)
            except IntegrityError:  # another writer took these seqs: chain onto its rows, once
                self._head = None
                return self._insert(batch)
        except BaseException:
            self._head = None  # unknown state: reload the head from the database next time
            raise

    def _insert(self, batch: list[_Queued]) -> range:
        with self._engine.begin() as conn:
            locked = lock_chain(conn)
            head = chain_head(conn) if locked or self._head is None else self._head
            rows, checkpoints, new_head = self._chained(batch, head)
            self._inserter.insert(conn, rows)
            if checkpoints:
                conn.execute(insert(_CHECKPOINTS), checkpoints)
        if checkpoints:
            self._last_checkpoint = time.monotonic()
        self._head = new_head
        return range(head.seq + 1, new_head.seq + 1)

    def _chained(
        self, batch: list[_Queued], head: ChainHead
    ) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], ChainHead]:
        """The batch's rows numbered and chained onto ``head``, the checkpoints due, the new head."""
        seq, prev, checkpoint_seq = head.seq, head.hash, head.checkpoint_seq
        rows, checkpoints = [], []
        for queued in batch:
            seq += 1
            row, hash_ = queued.prepared.chained(seq, prev)
            rows.append(row)
            prev = hash_
            if self._signer is not None and seq % self._checkpoint_every == 0:
                checkpoints.append(checkpoint_row(self._signer, "checkpoint", seq, hash_, checkpoint_seq))
                checkpoint_seq = seq
        due = time.monotonic() - self._last_checkpoint >= self._checkpoint_interval_s
        if self._signer is not None and due and checkpoint_seq != seq:  # time-based: the batch's last event
            checkpoints.append(checkpoint_row(self._signer, "checkpoint", seq, prev, checkpoint_seq))
            checkpoint_seq = seq
        return rows, checkpoints, ChainHead(seq, prev, checkpoint_seq)

    def _checkpoint_head(self, at_start: bool) -> None:
        """Writer thread: sign the chain head when no checkpoint covers it yet (at start: also the
        empty log, so an emptied log is told from a new one). Failures are logged, never raised."""
        try:
            with self._engine.begin() as conn:
                locked = lock_chain(conn)
                head = chain_head(conn) if locked or self._head is None else self._head
                has_any = conn.execute(select(func.count()).select_from(_CHECKPOINTS)).scalar_one() > 0
                if head.seq == head.checkpoint_seq and (has_any or not at_start):
                    return
                assert self._signer is not None
                row = checkpoint_row(self._signer, "checkpoint", head.seq, head.hash, head.checkpoint_seq)
                conn.execute(insert(_CHECKPOINTS), [row])
            self._head = ChainHead(head.seq, head.hash, head.seq)
            self._last_checkpoint = time.monotonic()
        except Exception as exc:  # boundary: a missing checkpoint is reported by verify, never fatal here
            self._head = None
            logger.error("audit: could not write a checkpoint: %s", _detail(exc))


def _call_id(queued: _Queued) -> str:
    return str(queued.prepared.values[0])


def _detail(exc: BaseException) -> str:
    """An exception for the operator log: its type and first line, redacted, without SQL parameters."""
    first = str(exc).split("[SQL:", 1)[0].strip().splitlines()
    return redact_text(f"{type(exc).__name__}: {first[0] if first else ''}")[:500]
