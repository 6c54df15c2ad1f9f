"""Reading the audit log for auditors: filters, keyset pages, one event's trail, counts, export.

Owns: ``EventFilter`` (what an auditor may ask for, validated once, shared by the HTTP
API and the CLI) and every read of ``audit_events`` that serves it.

- Pages are keyset pages over ``seq`` (``cursor`` = the last seq seen), never OFFSET:
  page 10,000 costs what page 1 costs, and each equality filter has a (column, seq)
  index, so a page reads only its own rows.
- ``iter_events`` streams any number of events in fixed-size chunks (one short query
  per chunk), so an export holds one chunk in memory, whatever the range.
- Free text searches the stored (already redacted) arguments' JSON, case-insensitively
  (ASCII), as written or as a JSON string value (``say "hi"`` finds ``"say \\"hi\\""``);
  ``rule_id`` matches one id of the decision's rule list exactly.

Must never: write (``audit/writer.py`` is the only writer), or return anything the writer did
not store: arguments are redacted at rest, so every read is redacted too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import ColumnElement, Engine, Row, Select, Table, distinct, func, or_, select
from sqlmodel import Session, col

from gateway.models import Approval, ApprovalPublic, ApprovalState, AuditRecord
from gateway.types import Effect, Outcome, Phase

_EVENTS: Table = AuditRecord.__table__  # type: ignore[attr-defined]
_APPROVALS: Table = Approval.__table__  # type: ignore[attr-defined]

Dimension = Literal["identity", "server", "tool", "effect", "outcome", "phase"]
"""What ``count_events`` can group by."""

Order = Literal["asc", "desc"]

MAX_PAGE = 1000
_EQUALITY = ("identity", "server", "tool", "effect", "outcome", "phase", "call_id", "approval_id")


class EventFilter(BaseModel):
    """Which events to read. Every field narrows; unknown fields are refused by name."""

    model_config = ConfigDict(extra="forbid")

    identity: str | None = Field(None, max_length=64, description="Who called (exact identity name).")
    server: str | None = Field(None, max_length=128, description="Upstream server (exact).")
    tool: str | None = Field(None, max_length=256, description="Upstream tool name, without the server (exact).")
    effect: Effect | None = Field(None, description="What policy decided: allow, deny or approve.")
    outcome: Outcome | None = Field(None, description="What happened: ok, tool_error, denied, timeout, ...")
    phase: Phase | None = Field(None, description="decision or outcome.")
    call_id: str | None = Field(None, max_length=128, description="One call: its decision and outcome events.")
    rule_id: str | None = Field(None, min_length=1, max_length=256, description="A policy rule id behind the decision.")
    approval_id: str | None = Field(None, max_length=32, description="Events of one approval.")
    approval_state: ApprovalState | None = Field(None, description="State of the event's approval (pending, ...).")
    since: datetime | None = Field(None, description="Events at or after this time (ISO 8601; no zone = UTC).")
    until: datetime | None = Field(None, description="Events before this time (ISO 8601; no zone = UTC).")
    text: str | None = Field(None, min_length=1, max_length=256, description="Substring of the redacted arguments.")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("until")
    @classmethod
    def _after_since(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if value is not None and since is not None and value <= since:
            raise ValueError(f"must be after since ({since.isoformat()}): the range is empty")
        return value


class EventPublic(BaseModel):
    """One audit event as auditors see it: arguments and rule ids parsed back from their stored JSON."""

    seq: int
    call_id: str
    phase: str
    method: str
    ts: datetime
    identity: str
    server: str
    tool: str
    arguments: Any
    """The redacted arguments (the stored text when it is not valid JSON)."""
    args_hash: str
    effect: str | None
    rule_ids: Any
    reason: str
    outcome: str | None
    error: str
    approval_id: str | None
    latency_policy_ms: float | None
    latency_upstream_ms: float | None
    latency_total_ms: float | None
    request_ref: str | None
    version: int
    risk: str = ""
    content_bytes: int | None = None
    """Size of the returned contents (resource reads, prompt gets, completions); never the contents."""
    content_sha256: str = ""
    prev_hash: str
    hash: str


class EventPage(BaseModel):
    events: list[EventPublic]
    next_cursor: int | None
    """Pass as ``cursor`` (same filters and order) for the next page; None on the last page."""


class EventDetail(BaseModel):
    event: EventPublic
    approval: ApprovalPublic | None
    """The approval the event belongs to (state, who decided, why, when), if any."""
    trail: list[EventPublic]
    """Every event of the same call or the same approval, in seq order."""


class CountRow(BaseModel):
    group: dict[str, str | None]
    events: int
    calls: int
    """Distinct calls among those events (a forwarded call writes a decision and an outcome event)."""


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(where: EventFilter) -> list[ColumnElement[bool]]:
    c = _EVENTS.c
    found: list[ColumnElement[bool]] = [
        c[name] == getattr(where, name) for name in _EQUALITY if getattr(where, name) is not None
    ]
    if where.rule_id is not None:  # stored as a canonical JSON list: match one quoted element
        found.append(c.rule_ids.like(f"%{_like_escape(json.dumps(where.rule_id, ensure_ascii=False))}%", escape="\\"))
    if where.approval_state is not None:  # EXISTS: one key lookup per candidate row, nothing materialized
        approvals = _APPROVALS.c
        found.append(
            select(approvals.id).where(approvals.id == c.approval_id, approvals.state == where.approval_state).exists()
        )
    if where.since is not None:
        found.append(c.ts >= where.since)
    if where.until is not None:
        found.append(c.ts < where.until)
    if where.text is not None:  # the stored text is JSON: a value's quotes and backslashes are escaped in it
        needles = {where.text, json.dumps(where.text, ensure_ascii=False)[1:-1]}
        found.append(or_(*(c.arguments.ilike(f"%{_like_escape(n)}%", escape="\\") for n in sorted(needles))))
    return found


def _select(where: EventFilter) -> Select[Any]:
    return select(_EVENTS).where(*_conditions(where))


def _json(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _public(row: Row[Any]) -> EventPublic:
    fields = dict(row._mapping)
    fields["arguments"] = _json(fields["arguments"])
    fields["rule_ids"] = _json(fields["rule_ids"])
    return EventPublic.model_validate(fields)


def query_events(
    engine: Engine, where: EventFilter, cursor: int | None = None, limit: int = 100, order: Order = "asc"
) -> EventPage:
    """One page of matching events in seq order (``desc``: newest first), after ``cursor``."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    seq = _EVENTS.c.seq
    statement = _select(where)
    if cursor is not None:
        statement = statement.where(seq > cursor if order == "asc" else seq < cursor)
    statement = statement.order_by(seq.asc() if order == "asc" else seq.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    events = [_public(row) for row in rows[:limit]]
    return EventPage(events=events, next_cursor=events[-1].seq if len(rows) > limit else None)


def iter_events(engine: Engine, where: EventFilter, chunk: int = 1000) -> Iterator[EventPublic]:
    """Every matching event, oldest first, read ``chunk`` rows at a time (constant memory)."""
    cursor: int | None = None
    while True:
        page = query_events(engine, where, cursor, min(chunk, MAX_PAGE))
        yield from page.events
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def get_event(engine: Engine, seq: int) -> EventDetail | None:
    """One event with its approval and its trail (the other events of its call or approval)."""
    c = _EVENTS.c
    with engine.connect() as conn:
        row = conn.execute(select(_EVENTS).where(c.seq == seq)).first()
        if row is None:
            return None
        event = _public(row)
        related = [c.call_id == event.call_id]
        approval = None
        if event.approval_id is not None:
            related.append(c.approval_id == event.approval_id)
            with Session(bind=conn) as session:
                found = session.get(Approval, event.approval_id)
                approval = found.public() if found is not None else None
        trail = conn.execute(select(_EVENTS).where(or_(*related)).order_by(c.seq).limit(MAX_PAGE)).all()
    return EventDetail(event=event, approval=approval, trail=[_public(r) for r in trail])


def count_events(engine: Engine, where: EventFilter, group_by: Sequence[Dimension]) -> list[CountRow]:
    """Matching events and distinct calls per group, largest first."""
    if not group_by:
        raise ValueError("group_by needs at least one of: identity, server, tool, effect, outcome, phase")
    columns = [_EVENTS.c[name] for name in group_by]
    events = func.count().label("events")
    statement = (
        select(*columns, events, func.count(distinct(_EVENTS.c.call_id)).label("calls"))
        .where(*_conditions(where))
        .group_by(*columns)
        .order_by(events.desc(), *columns)
    )
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    return [
        CountRow(group=dict(zip(group_by, row[: len(group_by)], strict=True)), events=row.events, calls=row.calls)
        for row in rows
    ]


EXPORT_COLUMNS = tuple(EventPublic.model_fields)


def export_lines(events: Iterable[EventPublic], fmt: Literal["jsonl", "csv"]) -> Iterator[str]:
    """Events as lines of JSON (one object each) or CSV (a header row; arguments and rule ids as JSON)."""
    if fmt == "jsonl":
        for event in events:
            yield event.model_dump_json() + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(values: Sequence[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(EXPORT_COLUMNS)
    for event in events:
        data = event.model_dump(mode="json")
        data["arguments"] = json.dumps(data["arguments"], ensure_ascii=False, sort_keys=True)
        data["rule_ids"] = json.dumps(data["rule_ids"], ensure_ascii=False)
        yield line([data[name] for name in EXPORT_COLUMNS])


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
