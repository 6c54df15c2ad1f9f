"""The audit log's only writer: ``AuditWriter``, the one code that appends audit events.

Owns: the writer's life (start, stop), its queue and its one thread, and the promise made to
callers: ``await record(event)`` returns the event's ``seq`` once its row is committed.

How a write works (group commit): ``record()`` prepares the event (``audit/rows.py``: redacted,
made storable, serialized), enqueues it and waits; that CPU work runs on the caller's loop
while the previous batch commits. One dedicated writer thread takes everything queued (up
to ``batch_max``) and appends it to the chain in ONE transaction (``audit/append.py``:
numbering, hashing, insert, checkpoints, the split retry that fails only a refused event).
Only then are the callers' futures resolved with their ``seq``; a caller whose event failed
gets ``AuditError`` (``audit/errors.py``; the gateway then denies that call: fail closed),
whose text never carries the database's (that goes, redacted and cut to its first line, to
the operator log).

With a signing key, the writer has the head signed at start (the empty log's genesis, seq 0,
too), whenever it idled ``checkpoint_interval_s`` and at shutdown; every ``checkpoint_every``-th
event, and the newest once that interval passed, are signed with their batch.

With ``async_outcome`` (off by default; ``audit_async_outcome``) the outcome of a call whose
decision is committed is queued without waiting (``record_outcome``): the answer goes out one
commit earlier, and a crash before the next commit loses that outcome row (the decision row
still shows the call ran). Decisions are always awaited.

Reading is elsewhere (``audit/query.py``, ``audit/verify.py``), and so is deleting
(``audit/prune.py``, the only code that deletes events).

Must never: write anything but audit rows; store unredacted arguments or error text;
resolve a caller before its row is committed (``submit`` has no caller to resolve); swallow a
database error.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from gateway.audit.append import ChainAppender
from gateway.audit.checkpoints import Signer
from gateway.audit.errors import AuditError, detail
from gateway.audit.insert import RowInserter
from gateway.audit.rows import PreparedEvent, StorageLimits, prepare
from gateway.redact import redact_text
from gateway.types import AuditEvent

logger = logging.getLogger(__name__)

__all__ = ["AuditWriter"]


@dataclass(slots=True)
class _Queued:
    prepared: PreparedEvent
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
        self._batch_max = batch_max
        self._signer = signer
        self._checkpoint_interval_s = checkpoint_interval_s
        self._limits = limits
        self._async_outcome = async_outcome
        self._store_ts = (inserter := RowInserter(engine)).store_ts
        self._appender = ChainAppender(  # touched only by the writer thread once started
            engine,
            inserter,
            signer=signer,
            checkpoint_every=checkpoint_every,
            checkpoint_interval_s=checkpoint_interval_s,
        )
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
            await loop.run_in_executor(self._executor, self._appender.load_head)
            if self._signer is not None:  # the tail a previous run left unsigned, or the empty log's genesis
                await loop.run_in_executor(self._executor, self._appender.checkpoint_head, True)
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
            await asyncio.get_running_loop().run_in_executor(self._executor, self._appender.checkpoint_head, False)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def record(self, event: AuditEvent, redact_fields: frozenset[str] = frozenset()) -> int:
        """Store ``event`` (redacted, chained); return its ``seq`` after the commit. Raises ``AuditError``."""
        if not self._accepting:
            raise AuditError("audit writer is not running")
        try:  # here, not on the writer thread: it runs beside the previous batch's commit
            prepared = prepare(event, redact_fields, self._store_ts, self._limits)
        except Exception as exc:  # a bug in making it storable: this event only
            logger.error("audit: event of call %r cannot be stored: %s", event.call_id, detail(exc))
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
        prepared = prepare(event, redact_fields, self._store_ts, self._limits)
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
                        await loop.run_in_executor(self._executor, self._appender.checkpoint_head, False)
                continue
            batch = [pending.popleft() for _ in range(min(len(pending), self._batch_max))]
            await self._commit(batch)

    async def _commit(self, batch: list[_Queued]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self._appender.write, [q.prepared for q in batch])
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
