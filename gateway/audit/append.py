"""Appending batches to the audit chain: the writer thread's half of ``AuditWriter``.

Owns: the chain state between commits (the cached ``ChainHead``, the time of the last
checkpoint) and, for one batch of prepared events, numbering each row (``seq`` = previous
+ 1), chaining it to its predecessor (``hash = sha256(prev_hash + canonical JSON of the row's
fields, seq included)``, see ``audit/chain.py``), inserting the batch in ONE transaction
(``audit/insert.py``) with the signed checkpoints due (``audit/checkpoints.py``) and committing.
Should the database refuse a transaction, the batch is split in halves and retried down to
single events, so only the refused event fails; a failure of the database itself
(``OperationalError``) fails the batch whole. The head is reloaded after any failure, so a
failed batch never leaves a gap in the chain.

With a signing key, every ``checkpoint_every``-th event also gets a signed checkpoint row,
written in the same transaction as the event it covers; so does the batch's last event once
``checkpoint_interval_s`` passed since the last one. ``checkpoint_head`` signs the head
itself (the writer calls it at start, when idle and at shutdown).

``seq`` is assigned here rather than by the database, so the primary key keeps the chain
linear: should a second writer (another process) have taken those numbers meanwhile, the
insert conflicts instead of forking the chain; the head is then reloaded and the batch
retried once. On PostgreSQL every append first takes the chain lock (``audit/head.py``).

Must never: be driven by anything but ``AuditWriter`` (the one writer; all of this runs on
its one thread), be called from the event loop (it blocks on the database), resolve or raise
to a caller (it returns a seq or an exception per event), or put database text anywhere but
the operator log (``errors.detail``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Engine, Table, func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.audit.checkpoints import Signer, checkpoint_row
from gateway.audit.errors import detail
from gateway.audit.head import ChainHead, chain_head, lock_chain
from gateway.audit.insert import RowInserter
from gateway.audit.rows import PreparedEvent
from gateway.models import AuditCheckpoint

logger = logging.getLogger(__name__)

_CHECKPOINTS: Table = AuditCheckpoint.__table__  # type: ignore[attr-defined]


class ChainAppender:
    """Numbers, chains, inserts and commits batches of prepared events (blocking; one thread)."""

    def __init__(
        self,
        engine: Engine,
        inserter: RowInserter,
        *,
        signer: Signer | None,
        checkpoint_every: int,
        checkpoint_interval_s: float,
    ) -> None:
        self._engine = engine
        self._inserter = inserter
        self._signer = signer
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval_s = checkpoint_interval_s
        self._last_checkpoint = time.monotonic()
        self._head: ChainHead | None = None

    def load_head(self) -> None:
        """Read the chain head from the database (raises what the database raised)."""
        with self._engine.connect() as conn:
            self._head = chain_head(conn)

    def write(self, batch: list[PreparedEvent]) -> list[int | BaseException]:
        """Number, chain, insert and commit one batch; per event, its seq or why it failed.

        A batch that fails is split in halves and each retried, down to single events, so one
        event the database refuses fails alone and never another identity's. A failure of the
        database itself (``OperationalError``: unreachable, locked) fails the batch without
        splitting it.
        """
        try:
            return list(self._insert_once_more(batch))
        except OperationalError as exc:
            logger.error("audit: commit of %d events failed: %s", len(batch), detail(exc))
            return [exc] * len(batch)
        except Exception as exc:
            if len(batch) == 1:
                logger.error("audit: event of call %r refused by the database: %s", batch[0].call_id, detail(exc))
                return [exc]
            half = len(batch) // 2
            return self.write(batch[:half]) + self.write(batch[half:])

    def _insert_once_more(self, batch: list[PreparedEvent]) -> range:
        try:
            try:
                return self._insert(batch)
            except IntegrityError:  # another writer took these seqs: chain onto its rows, once
                self._head = None
                return self._insert(batch)
        except BaseException:
            self._head = None  # unknown state: reload the head from the database next time
            raise

    def _insert(self, batch: list[PreparedEvent]) -> range:
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
        self, batch: list[PreparedEvent], head: ChainHead
    ) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], ChainHead]:
        """The batch's rows numbered and chained onto ``head``, the checkpoints due, the new head."""
        seq, prev, checkpoint_seq = head.seq, head.hash, head.checkpoint_seq
        rows, checkpoints = [], []
        for prepared in batch:
            seq += 1
            row, hash_ = prepared.chained(seq, prev)
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

    def checkpoint_head(self, at_start: bool) -> None:
        """Sign the chain head when no checkpoint covers it yet (at start: also the empty log, so
        an emptied log is told from a new one). Failures are logged, never raised."""
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
            logger.error("audit: could not write a checkpoint: %s", detail(exc))
