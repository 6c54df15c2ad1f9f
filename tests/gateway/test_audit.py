"""gateway/audit.py: group commit, durability on return, redaction at rest, the chain, fail closed."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from gateway.audit import GENESIS_HASH, AuditError, AuditWriter, fetch_events, verify_chain
from gateway.db import create_db_engine, migrate
from gateway.types import AuditEvent, args_hash
from tests.gateway.test_redact import SECRETS

pytestmark = pytest.mark.anyio


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{db_path}")
    migrate(engine)
    yield engine
    engine.dispose()


def make_event(n: int = 0, **overrides: Any) -> AuditEvent:
    arguments = overrides.pop("arguments", {"n": n})
    fields: dict[str, Any] = {
        "call_id": f"call-{n}",
        "phase": "decision",
        "method": "tools/call",
        "identity": "reader-agent",
        "server": "notes",
        "tool": "read",
        "arguments": arguments,
        "args_hash": args_hash(arguments),
        "effect": "allow",
        "rule_ids": ("r1",),
        "reason": "granted",
    }
    fields.update(overrides)
    return AuditEvent(**fields)


def count_commits(engine: Engine) -> list[int]:
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    return commits


async def test_concurrent_records_are_all_committed_in_grouped_commits_with_a_valid_chain(engine: Engine) -> None:
    commits = count_commits(engine)
    writer = AuditWriter(engine, batch_max=512)
    await writer.start()
    seqs = await asyncio.gather(*(writer.record(make_event(n)) for n in range(1000)))
    await writer.stop()
    assert sorted(seqs) == list(range(1, 1001))
    assert len(commits) <= 10, f"{len(commits)} commits for 1000 events: not grouped"
    assert verify_chain(engine) is None
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 1000


async def test_each_caller_gets_the_seq_of_its_own_event(engine: Engine) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    seqs = await asyncio.gather(*(writer.record(make_event(n)) for n in range(200)))
    await writer.stop()
    by_seq = {record.seq: record.call_id for record in fetch_events(engine, limit=1000)}
    assert [by_seq[seq] for seq in seqs] == [f"call-{n}" for n in range(200)]


async def test_batches_never_exceed_batch_max(engine: Engine) -> None:
    commits = count_commits(engine)
    writer = AuditWriter(engine, batch_max=7)
    await writer.start()
    await asyncio.gather(*(writer.record(make_event(n)) for n in range(50)))
    await writer.stop()
    assert len(commits) >= 8  # ceil(50 / 7)


async def test_record_returns_only_after_the_row_is_committed(engine: Engine, db_path: Path) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    try:
        seq = await writer.record(make_event(7, arguments={"path": "/etc/hosts"}))
        other = sqlite3.connect(db_path)  # a separate connection sees only committed data
        row = other.execute("SELECT call_id, arguments FROM audit_events WHERE seq = ?", (seq,)).fetchone()
        other.close()
        assert row == ("call-7", '{"path":"/etc/hosts"}')
    finally:
        await writer.stop()


async def test_no_seeded_secret_reaches_the_stored_rows(engine: Engine, db_path: Path) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    for n, (_shape, secret, template) in enumerate(SECRETS):
        text_with_secret = template.format(secret)
        await writer.record(
            make_event(
                n,
                arguments={"query": text_with_secret, "password": secret, "nested": [{"note": text_with_secret}]},
                error=f"upstream said: {text_with_secret}",
                reason=f"rule matched {text_with_secret}",
            )
        )
    await writer.record(make_event(999, arguments={"ssn": "123-45-6789"}), redact_fields=frozenset({"ssn"}))
    await writer.stop()
    raw = sqlite3.connect(db_path)
    dump = "\n".join(raw.iterdump())  # every byte of every table, as SQL
    raw.close()
    leaked = [shape for shape, secret, _ in SECRETS if secret in dump]
    assert leaked == []
    assert "123-45-6789" not in dump
    assert verify_chain(engine) is None


async def test_event_fields_are_stored_as_given(engine: Engine) -> None:
    ts = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    event_ = make_event(
        1,
        phase="outcome",
        outcome="tool_error",
        error="boom",
        approval_id="apr_abc",
        latency_policy_ms=1,  # an int: stored as a float, and the chain must still verify
        latency_upstream_ms=2.5,
        latency_total_ms=3.75,
        request_ref="req-1",
        ts=ts,
    )
    writer = AuditWriter(engine)
    await writer.start()
    await writer.record(event_)
    await writer.stop()
    [stored] = fetch_events(engine, call_id="call-1")
    assert stored.ts == ts
    assert (stored.phase, stored.outcome, stored.error) == ("outcome", "tool_error", "boom")
    assert stored.approval_id == "apr_abc"
    assert (stored.latency_policy_ms, stored.latency_upstream_ms, stored.latency_total_ms) == (1.0, 2.5, 3.75)
    assert stored.rule_ids == '["r1"]'
    assert stored.args_hash == event_.args_hash
    assert stored.prev_hash == GENESIS_HASH
    assert verify_chain(engine) is None


async def test_a_failing_commit_raises_audit_error_and_does_not_break_the_chain(engine: Engine) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    await writer.record(make_event(1))
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        )
    results = await asyncio.gather(*(writer.record(make_event(n)) for n in range(2, 12)), return_exceptions=True)
    assert all(isinstance(r, AuditError) for r in results), results
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse"))
    await writer.record(make_event(12))
    await writer.stop()
    assert [r.call_id for r in fetch_events(engine)] == ["call-1", "call-12"]
    assert verify_chain(engine) is None


async def test_a_missing_table_makes_record_raise_audit_error(engine: Engine) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_events"))
    with pytest.raises(AuditError, match="audit commit failed"):
        await writer.record(make_event(1))
    await writer.stop()


async def test_start_fails_loudly_on_an_unusable_database(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    with pytest.raises(AuditError, match="chain head"):
        await AuditWriter(engine).start()
    engine.dispose()


async def test_stop_drains_everything_queued_and_later_records_are_refused(engine: Engine) -> None:
    writer = AuditWriter(engine, batch_max=16)
    await writer.start()
    tasks = [asyncio.create_task(writer.record(make_event(n))) for n in range(300)]
    await asyncio.sleep(0)  # let every task enqueue (a scheduling point, not a wait for time)
    await writer.stop()
    assert all(task.done() and not task.cancelled() for task in tasks)
    assert len({task.result() for task in tasks}) == 300
    with pytest.raises(AuditError, match="not running"):
        await writer.record(make_event(301))


async def test_the_chain_continues_across_writer_restarts(engine: Engine) -> None:
    for round_ in range(3):
        writer = AuditWriter(engine)
        await writer.start()
        await asyncio.gather(*(writer.record(make_event(100 * round_ + n)) for n in range(10)))
        await writer.stop()
    records = fetch_events(engine, limit=100)
    assert len(records) == 30
    assert all(b.prev_hash == a.hash for a, b in pairwise(records))
    assert verify_chain(engine) is None


async def test_two_writers_on_one_database_never_fork_the_chain(engine: Engine, db_path: Path) -> None:
    other_engine = create_db_engine(f"sqlite:///{db_path}")  # as a second gateway process would have
    first, second = AuditWriter(engine), AuditWriter(other_engine)
    await first.start()
    await second.start()
    seqs = []
    for n in range(10):
        writer = first if n % 2 == 0 else second  # each write finds its head taken by the other writer
        seqs.append(await writer.record(make_event(n)))
    await first.stop()
    await second.stop()
    other_engine.dispose()
    assert seqs == list(range(1, 11))
    assert verify_chain(engine) is None


async def test_verify_chain_finds_a_tampered_or_deleted_record(engine: Engine) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    await asyncio.gather(*(writer.record(make_event(n)) for n in range(10)))
    await writer.stop()
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET effect = 'deny' WHERE seq = 4"))
    assert verify_chain(engine) == 4
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET effect = 'allow' WHERE seq = 4"))
    assert verify_chain(engine) is None
    with engine.begin() as conn:  # renumbering is tampering too: seq is hashed
        conn.execute(text("UPDATE audit_events SET seq = 100 WHERE seq = 10"))
    assert verify_chain(engine) == 100
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET seq = 10 WHERE seq = 100"))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 4"))
    assert verify_chain(engine) == 5


async def test_fetch_events_filters_by_call_and_keeps_the_newest(engine: Engine) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    for n in range(5):
        await writer.record(make_event(n, call_id="same" if n % 2 else f"call-{n}"))
    await writer.stop()
    assert [r.seq for r in fetch_events(engine, call_id="same")] == [2, 4]
    assert [r.seq for r in fetch_events(engine, limit=2)] == [4, 5]


async def test_throughput_of_10000_concurrent_events(engine: Engine) -> None:
    writer = AuditWriter(engine, batch_max=512)
    await writer.start()
    events = [make_event(n, arguments={"path": f"/notes/{n}", "token": "x"}) for n in range(10_000)]
    started = time.perf_counter()
    seqs = await asyncio.gather(*(writer.record(e) for e in events))
    elapsed = time.perf_counter() - started
    await writer.stop()
    assert len(set(seqs)) == 10_000
    assert verify_chain(engine) is None
    print(f"\naudit writer: 10,000 concurrent events in {elapsed:.2f} s = {10_000 / elapsed:,.0f} events/s")
