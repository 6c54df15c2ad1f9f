"""Inserting chained audit rows fast: positional tuples straight through the DBAPI.

Owns: ``RowInserter``, which stores rows of ``audit_events`` (``ROW_COLUMNS`` order, as
``rows.PreparedEvent.chained`` builds them) with the same stored values as a SQLAlchemy insert,
without its per-row type processing, and ``store_ts``: a timestamp as the driver stores it.

Must never: begin or commit a transaction (the writer thread's ``audit/append.py`` does, in
one per batch), number or hash a row, or insert anywhere but ``audit_events``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine, Table

from gateway.audit.chain import HASHED_FIELDS
from gateway.models import AuditRecord

_EVENTS: Table = AuditRecord.__table__  # type: ignore[attr-defined]

ROW_COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
"""The columns of an inserted row, in the order of its values."""


def _sqlite_ts(ts: datetime) -> str:
    """How SQLAlchemy stores a DATETIME on SQLite (its default storage format), written directly."""
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031  # the fastest spelling
        ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second, ts.microsecond,
    )  # fmt: skip


class RowInserter:
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
        self._row_marks = f"({', '.join([mark] * len(ROW_COLUMNS))})"
        self._sql: dict[int, str] = {}
        processor = _EVENTS.c.ts.type.dialect_impl(dialect).bind_processor(dialect)
        self.store_ts: Callable[[Any], Any] = processor if processor is not None else (lambda value: value)
        if dialect.name == "sqlite":
            self.store_ts = _sqlite_ts

    def _statement(self, rows: int) -> str:
        sql = self._sql.get(rows)
        if sql is None:
            values = ", ".join([self._row_marks] * rows)
            sql = self._sql[rows] = f"INSERT INTO audit_events ({', '.join(ROW_COLUMNS)}) VALUES {values}"
        return sql

    def insert(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not self._multi_row:
            conn.exec_driver_sql(self._statement(1), rows)
            return
        step = self.ROWS_PER_STATEMENT
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            conn.exec_driver_sql(self._statement(len(part)), tuple(chain.from_iterable(part)))
