"""gateway/audit/query.py: each filter returns exactly the matching events; pages, trail, counts,
bad filters, and exports that stream in chunks. On SQLite and PostgreSQL.

The corpus is written by the real writer; expected results are computed in Python from
the same events, so every filter is checked against an independent answer.
"""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, event, insert
from sqlmodel import Session

from gateway.audit.query import (
    EventFilter,
    count_events,
    export_lines,
    get_event,
    iter_events,
    query_events,
)
from gateway.models import Approval, ApprovalState, AuditRecord
from gateway.types import AuditEvent, Outcome, canonical_json
from tests.gateway.audit.events import make_event, write

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
IDENTITIES = ("agent-a", "agent-b", "alice")
TOOLS = (("notes", "read"), ("notes", "add_note"), ("time", "now"), ("git", "git_log"))
RULES: tuple[tuple[str, ...], ...] = (("r1",), ("r1", "r2"), ("r10",), ("deny_all",), ("denyXall",), ())
NOTES = ("Quarterly REPORT", 'say "hi"', "100% sure", "snake_case", "snakeXcase", "café", "plain")
APPROVAL_STATES: tuple[ApprovalState, ...] = ("pending", "approved", "denied", "expired")


@dataclass(frozen=True)
class Stored:
    seq: int
    event: AuditEvent

    @property
    def ts(self) -> datetime:
        assert self.event.ts is not None
        return self.event.ts

    @property
    def arguments_json(self) -> str:
        return canonical_json(dict(self.event.arguments))


def corpus() -> list[AuditEvent]:
    events = []
    for n in range(84):
        server, tool = TOOLS[n % 4]
        effect = ("allow", "allow", "deny", "approve", "allow")[n % 5]
        base = make_event(
            n,
            identity=IDENTITIES[n % 3],
            server=server,
            tool=tool,
            arguments={"path": f"/notes/{n}", "note": NOTES[n % 7]},
            effect=effect,
            rule_ids=RULES[n % 6],
            outcome={"deny": "denied", "approve": "approval_required", "allow": None}[effect],
            approval_id=f"apr_{n:03d}" if effect == "approve" else None,
            ts=T0 + timedelta(minutes=n),
        )
        events.append(base)
        if effect == "allow":  # forwarded: a second event with the outcome
            outcome: Outcome = ("ok", "tool_error", "timeout")[n % 3]
            events.append(replace(base, phase="outcome", outcome=outcome, ts=T0 + timedelta(minutes=n, seconds=30)))
    return events


def approval_state(approval_id: str | None) -> ApprovalState | None:
    return None if approval_id is None else APPROVAL_STATES[int(approval_id[4:]) % 4]


@pytest.fixture
async def stored(engine: Engine) -> list[Stored]:
    events = corpus()
    seqs = await write(engine, events)
    with Session(engine) as session:
        for e in events:
            if e.approval_id is not None:
                session.add(
                    Approval(
                        id=e.approval_id,
                        call_id=e.call_id,
                        identity=e.identity,
                        server=e.server,
                        tool=e.tool,
                        tool_name=f"{e.server}__{e.tool}",
                        arguments=canonical_json(dict(e.arguments)),
                        args_hash=e.args_hash,
                        state=approval_state(e.approval_id) or "pending",
                        expires_at=T0 + timedelta(days=1),
                        decided_by="alice" if approval_state(e.approval_id) in ("approved", "denied") else None,
                    )
                )
        session.commit()
    return sorted((Stored(seq, e) for seq, e in zip(seqs, events, strict=True)), key=lambda s: s.seq)


def like(text: str) -> Callable[[Stored], bool]:
    needles = {text.lower(), json.dumps(text, ensure_ascii=False)[1:-1].lower()}
    return lambda s: any(needle in s.arguments_json.lower() for needle in needles)


FILTERS: list[tuple[str, dict[str, Any], Callable[[Stored], bool]]] = [
    ("identity", {"identity": "agent-b"}, lambda s: s.event.identity == "agent-b"),
    ("server", {"server": "time"}, lambda s: s.event.server == "time"),
    ("tool", {"tool": "add_note"}, lambda s: s.event.tool == "add_note"),
    ("effect", {"effect": "deny"}, lambda s: s.event.effect == "deny"),
    ("outcome", {"outcome": "ok"}, lambda s: s.event.outcome == "ok"),
    ("outcome-held", {"outcome": "approval_required"}, lambda s: s.event.outcome == "approval_required"),
    ("phase", {"phase": "outcome"}, lambda s: s.event.phase == "outcome"),
    ("call_id", {"call_id": "call-10"}, lambda s: s.event.call_id == "call-10"),
    ("rule_id exact, not r10", {"rule_id": "r1"}, lambda s: "r1" in s.event.rule_ids),
    ("rule_id with _", {"rule_id": "deny_all"}, lambda s: "deny_all" in s.event.rule_ids),
    ("approval_id", {"approval_id": "apr_008"}, lambda s: s.event.approval_id == "apr_008"),
    ("approval_state", {"approval_state": "approved"}, lambda s: approval_state(s.event.approval_id) == "approved"),
    ("since", {"since": T0 + timedelta(minutes=40)}, lambda s: s.ts >= T0 + timedelta(minutes=40)),
    ("until", {"until": T0 + timedelta(minutes=10)}, lambda s: s.ts < T0 + timedelta(minutes=10)),
    (
        "range",
        {"since": "2026-03-01T12:20:00", "until": "2026-03-01T14:25:00+02:00"},
        lambda s: T0 + timedelta(minutes=20) <= s.ts < T0 + timedelta(minutes=25),
    ),
    ("text any case", {"text": "report"}, like("report")),
    ("text quotes", {"text": 'say "hi"'}, like('say "hi"')),
    ("text percent", {"text": "100%"}, like("100%")),
    ("text underscore", {"text": "snake_case"}, like("snake_case")),
    ("text unicode", {"text": "café"}, like("café")),
    ("text in a path", {"text": "/notes/7"}, like("/notes/7")),
    ("text as JSON", {"text": '"note":"plain"'}, like('"note":"plain"')),
    (
        "combined",
        {"identity": "agent-a", "effect": "allow", "phase": "decision", "since": T0 + timedelta(minutes=30)},
        lambda s: (
            (s.event.identity, s.event.effect, s.event.phase) == ("agent-a", "allow", "decision")
            and s.ts >= T0 + timedelta(minutes=30)
        ),
    ),
    ("nothing matches", {"identity": "nobody"}, lambda s: False),
]


@pytest.mark.parametrize(("values", "expected"), [f[1:] for f in FILTERS], ids=[f[0] for f in FILTERS])
async def test_each_filter_returns_exactly_the_matching_events(
    engine: Engine, stored: list[Stored], values: dict[str, Any], expected: Callable[[Stored], bool]
) -> None:
    want = [s.seq for s in stored if expected(s)]
    where = EventFilter.model_validate(values)
    assert [e.seq for e in iter_events(engine, where, chunk=7)] == want
    assert [e.seq for e in query_events(engine, where, limit=1000).events] == want
    if values.get("identity") != "nobody":
        assert want, "a filter test that matches nothing proves little"


async def test_pages_follow_the_cursor_in_both_orders(engine: Engine, stored: list[Stored]) -> None:
    everything = EventFilter(identity="agent-a")
    want = [s.seq for s in stored if s.event.identity == "agent-a"]
    for order, expected in (("asc", want), ("desc", want[::-1])):
        seen: list[int] = []
        cursor = None
        while True:
            page = query_events(engine, everything, cursor, limit=7, order=order)  # type: ignore[arg-type]
            assert len(page.events) <= 7
            seen += [e.seq for e in page.events]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected


async def test_an_event_reads_back_with_parsed_arguments_and_rule_ids(engine: Engine, stored: list[Stored]) -> None:
    first = stored[0]
    [event_] = query_events(engine, EventFilter(call_id=first.event.call_id, phase="decision")).events
    assert event_.arguments == dict(first.event.arguments)
    assert event_.rule_ids == list(first.event.rule_ids)
    assert event_.ts == first.event.ts


async def test_one_event_comes_with_its_approval_and_its_trail(engine: Engine, stored: list[Stored]) -> None:
    held = next(s for s in stored if approval_state(s.event.approval_id) == "approved")
    replay = make_event(
        999,
        phase="outcome",
        outcome="ok",
        approval_id=held.event.approval_id,
        effect="allow",
        ts=T0 + timedelta(hours=5),
    )
    [replay_seq] = await write(engine, [replay])
    detail = get_event(engine, held.seq)
    assert detail is not None and detail.approval is not None
    assert (detail.approval.id, detail.approval.state, detail.approval.decided_by) == (
        held.event.approval_id,
        "approved",
        "alice",
    )
    assert [e.seq for e in detail.trail] == [held.seq, replay_seq]
    assert get_event(engine, 10_000) is None


async def test_counts_by_identity_and_effect(engine: Engine, stored: list[Stored]) -> None:
    rows = count_events(engine, EventFilter(), ["identity", "effect"])
    events = Counter((s.event.identity, s.event.effect) for s in stored)
    calls = Counter((i, e) for i, e, _ in {(s.event.identity, s.event.effect, s.event.call_id) for s in stored})
    assert {(r.group["identity"], r.group["effect"]): (r.events, r.calls) for r in rows} == {
        key: (events[key], calls[key]) for key in events
    }
    assert [r.events for r in rows] == sorted((r.events for r in rows), reverse=True)


async def test_counts_over_a_range_by_tool(engine: Engine, stored: list[Stored]) -> None:
    since, until = T0 + timedelta(minutes=10), T0 + timedelta(minutes=30)
    rows = count_events(engine, EventFilter(since=since, until=until), ["tool"])
    want = Counter(s.event.tool for s in stored if since <= s.ts < until)
    assert {r.group["tool"]: r.events for r in rows} == dict(want)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"tool_name": "x"}, "tool_name"),
        ({"effect": "maybe"}, "effect"),
        ({"outcome": "fine"}, "outcome"),
        ({"approval_state": "granted!"}, "approval_state"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "until"),
        ({"since": "2026-03-01", "until": "2026-03-01"}, "until"),
        ({"text": ""}, "text"),
        ({"identity": "x" * 65}, "identity"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EventFilter.model_validate(values)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_a_page_size_out_of_range_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="limit"):
        query_events(engine, EventFilter(), limit=0)


async def test_exports_are_complete_in_jsonl_and_csv(engine: Engine, stored: list[Stored]) -> None:
    where = EventFilter(effect="deny")
    want = [s.seq for s in stored if s.event.effect == "deny"]
    lines = list(export_lines(iter_events(engine, where), "jsonl"))
    assert [json.loads(line)["seq"] for line in lines] == want
    rows = list(csv.DictReader(io.StringIO("".join(export_lines(iter_events(engine, where), "csv")))))
    assert [int(r["seq"]) for r in rows] == want
    assert json.loads(rows[0]["arguments"]) == json.loads(lines[0])["arguments"]


def bulk_insert(engine: Engine, count: int) -> int:
    """``count`` events inserted directly (not chained: this tests reading, not the chain); their JSON size."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    size = 0
    with engine.begin() as conn:
        for start in range(0, count, 5000):
            rows = [
                {
                    "seq": n + 1,
                    "call_id": f"c{n}",
                    "phase": "decision",
                    "method": "tools/call",
                    "ts": T0 + timedelta(seconds=n),
                    "identity": "agent-a",
                    "server": "notes",
                    "tool": "read",
                    "arguments": canonical_json({"path": f"/notes/{n}", "body": "x" * 200}),
                    "args_hash": "0" * 64,
                    "rule_ids": '["r1"]',
                    "reason": "granted",
                    "error": "",
                    "version": 1,
                    "prev_hash": "0" * 64,
                    "hash": "0" * 64,
                }
                for n in range(start, min(start + 5000, count))
            ]
            size += sum(len(json.dumps(row, default=str)) for row in rows)
            conn.execute(insert(table), rows)
    return size


def test_iterating_events_reads_them_in_chunks(engine: Engine) -> None:
    bulk_insert(engine, 2500)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cur, stmt, *rest: statements.append(stmt))
    assert sum(1 for _ in iter_events(engine, EventFilter(), chunk=1000)) == 2500
    assert len(statements) == 3 and all("LIMIT" in s.upper() for s in statements)


def test_an_export_streams_in_constant_memory(engine: Engine) -> None:
    size = bulk_insert(engine, 30_000)
    tracemalloc.start()
    try:
        count = sum(1 for _ in export_lines(iter_events(engine, EventFilter(), chunk=100), "jsonl"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000
    assert peak < size / 10, f"export peaked at {peak:,} bytes for {size:,} bytes of events"
