"""gateway/audit/writer.py: group commit, durability on return, the chain, checkpoints, fail closed.

Through the writer's public API, so these also cover its parts: audit/append.py (numbering,
chaining, split retry, checkpoints), audit/head.py (the head and the PostgreSQL lock) and
audit/insert.py (the DBAPI fast path).

Every test runs on SQLite and on PostgreSQL (the ``engine`` fixture, tests/gateway/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Engine, text

from gateway.audit.chain import GENESIS_HASH, canonical_encoder, chain_hash
from gateway.audit.errors import AuditError
from gateway.audit.insert import RowInserter
from gateway.audit.query import fetch_events
from gateway.audit.verify import verify
from gateway.audit.writer import AuditWriter
from gateway.db import create_db_engine
from gateway.models import AuditRecord
from gateway.types import canonical_json
from tests.gateway.audit.events import (
    allow_inserts,
    count_commits,
    first_bad,
    make_event,
    make_signer,
    refuse_inserts,
    write,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def other_engine(database_url: str) -> Iterator[Engine]:
    """A second engine on the same database: what another connection or process sees."""
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


async def test_concurrent_records_are_all_committed_in_grouped_commits_with_a_valid_chain(engine: Engine) -> None:
    commits = count_commits(engine)
    seqs = await write(engine, [make_event(n) for n in range(1000)], batch_max=512)
    assert sorted(seqs) == list(range(1, 1001))
    assert len(commits) <= 10, f"{len(commits)} commits for 1000 events: not grouped"
    assert first_bad(engine) is None
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 1000


async def test_each_caller_gets_the_seq_of_its_own_event(engine: Engine) -> None:
    seqs = await write(engine, [make_event(n) for n in range(200)])
    by_seq = {record.seq: record.call_id for record in fetch_events(engine, limit=1000)}
    assert [by_seq[seq] for seq in seqs] == [f"call-{n}" for n in range(200)]


async def test_batches_never_exceed_batch_max(engine: Engine) -> None:
    commits = count_commits(engine)
    await write(engine, [make_event(n) for n in range(50)], batch_max=7)
    assert len(commits) >= 8  # ceil(50 / 7)


async def test_record_returns_only_after_the_row_is_committed(engine: Engine, other_engine: Engine) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    try:
        seq = await writer.record(make_event(7, arguments={"path": "/etc/hosts"}))
        with other_engine.connect() as conn:  # a separate connection sees only committed data
            row = conn.execute(text("SELECT call_id, arguments FROM audit_events WHERE seq = :s"), {"s": seq}).one()
        assert tuple(row) == ("call-7", '{"path":"/etc/hosts"}')
    finally:
        await writer.stop()


async def test_event_fields_are_stored_as_given_and_hash_as_chain_hash_says(engine: Engine) -> None:
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
        arguments={"seq": 5, "text": 'quote " and "seq":7 inside', "n": [1, 2.5, None, True]},
        ts=ts,
    )
    await write(engine, [event_])
    [stored] = fetch_events(engine, call_id="call-1")
    assert stored.ts == ts
    assert (stored.phase, stored.outcome, stored.error) == ("outcome", "tool_error", "boom")
    assert stored.approval_id == "apr_abc"
    assert (stored.latency_policy_ms, stored.latency_upstream_ms, stored.latency_total_ms) == (1.0, 2.5, 3.75)
    assert stored.rule_ids == '["r1"]'
    assert stored.args_hash == event_.args_hash
    assert stored.prev_hash == GENESIS_HASH
    assert stored.hash == chain_hash(GENESIS_HASH, stored.model_dump())
    assert first_bad(engine) is None


async def test_a_naive_or_foreign_zone_time_is_stored_in_utc(engine: Engine) -> None:
    paris = datetime.fromisoformat("2026-05-06T09:08:09+02:00")
    await write(engine, [make_event(1, ts=paris), make_event(2, ts=datetime(2026, 5, 6, 7, 8, 9))])
    assert [r.ts for r in fetch_events(engine)] == [paris, datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)]
    assert first_bad(engine) is None


async def test_a_failing_commit_raises_audit_error_and_does_not_break_the_chain(engine: Engine) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    await writer.record(make_event(1))
    refuse_inserts(engine)
    results = await asyncio.gather(*(writer.record(make_event(n)) for n in range(2, 12)), return_exceptions=True)
    assert all(isinstance(r, AuditError) for r in results), results
    allow_inserts(engine)
    await writer.record(make_event(12))
    await writer.stop()
    assert [r.call_id for r in fetch_events(engine)] == ["call-1", "call-12"]
    assert first_bad(engine) is None


async def test_arguments_with_keys_that_cannot_be_sorted_are_stored_with_text_keys(engine: Engine) -> None:
    odd = make_event(2, arguments={1: "int key", "a": "str key"}, args_hash="-")  # keys that cannot be sorted
    seqs = await write(engine, [make_event(1), odd, make_event(3)])
    assert sorted(seqs) == [1, 2, 3]
    stored = {r.call_id: r for r in fetch_events(engine)}
    assert json.loads(stored["call-2"].arguments) == {"1": "int key", "a": "str key"}
    assert "non-text keys stored as text" in stored["call-2"].error
    assert first_bad(engine) is None


async def test_a_missing_table_makes_record_raise_audit_error(engine: Engine) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_events"))
    with pytest.raises(AuditError, match="could not commit"):
        await writer.record(make_event(1))
    await writer.stop()


async def test_start_fails_loudly_on_an_unusable_database(tmp_path: Any) -> None:
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
        await write(engine, [make_event(100 * round_ + n) for n in range(10)])
    records = fetch_events(engine, limit=100)
    assert len(records) == 30
    assert all(b.prev_hash == a.hash for a, b in pairwise(records))
    assert first_bad(engine) is None


async def test_two_writers_on_one_database_never_fork_the_chain(engine: Engine, other_engine: Engine) -> None:
    first, second = AuditWriter(engine), AuditWriter(other_engine)  # as a second gateway process would have
    await first.start()
    await second.start()
    seqs = []
    for n in range(10):
        writer = first if n % 2 == 0 else second  # each write finds its head taken by the other writer
        seqs.append(await writer.record(make_event(n)))
    await first.stop()
    await second.stop()
    assert seqs == list(range(1, 11))
    assert first_bad(engine) is None


async def test_a_signed_checkpoint_is_stored_every_n_events_in_the_same_commit(engine: Engine) -> None:
    signer = make_signer()
    commits = count_commits(engine)
    await write(engine, [make_event(n) for n in range(25)], signer=signer, checkpoint_every=10, batch_max=25)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, seq, prev_seq, key_id FROM audit_checkpoints ORDER BY seq")).all()
        hashes = {r[0]: r[1] for r in conn.execute(text("SELECT seq, hash FROM audit_events WHERE seq IN (10, 20)"))}
    # The empty log's genesis checkpoint at start, every 10th event, and the tail at shutdown.
    assert [tuple(r) for r in rows] == [
        ("checkpoint", seq, prev, signer.key_id) for seq, prev in ((0, 0), (10, 0), (20, 10), (25, 20))
    ]
    assert len(commits) == 3  # genesis checkpoint, the batch with its two checkpoints, the shutdown checkpoint
    report = verify(engine, signer.public)
    assert report.ok and report.checkpoints == 3, report
    assert set(hashes) == {10, 20}


async def test_checkpoints_link_across_restarts_and_without_a_key_there_are_none(engine: Engine) -> None:
    signer = make_signer()
    await write(engine, [make_event(n) for n in range(5)], checkpoint_every=2)  # no key: no checkpoint
    await write(engine, [make_event(n) for n in range(5, 9)], signer=signer, checkpoint_every=2)
    await write(engine, [make_event(n) for n in range(9, 13)], signer=signer, checkpoint_every=2)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, prev_seq FROM audit_checkpoints ORDER BY seq")).all()
    # At start the unsigned tail (seq 5) is signed; every 2nd event; at shutdown the tail (9, 13).
    assert [tuple(r) for r in rows] == [(5, 0), (6, 5), (8, 6), (9, 8), (10, 9), (12, 10), (13, 12)]
    assert verify(engine, signer.public).ok


def test_the_writers_fast_paths_produce_exactly_the_reference_forms(engine: Engine) -> None:
    """The canonical JSON and stored timestamps the writer spells itself equal the slow, obvious ones."""
    encode = canonical_encoder()
    for value in ({"b": 1, "a": [1, 2.5, None, True, 'é"\\\n']}, ["x"], {"n": {"z": -0.0, "y": 10**20}}):
        assert encode(value) == canonical_json(value)
    column = AuditRecord.__table__.c.ts  # type: ignore[attr-defined]
    reference = column.type.dialect_impl(engine.dialect).bind_processor(engine.dialect) or (lambda value: value)
    store = RowInserter(engine).store_ts
    for ts in (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)):
        assert store(ts) == reference(ts)


async def test_throughput_of_10000_concurrent_events(engine: Engine) -> None:
    events = [make_event(n, arguments={"path": f"/notes/{n}", "token": "x"}) for n in range(10_000)]
    started = time.perf_counter()
    seqs = await write(engine, events, batch_max=512)
    elapsed = time.perf_counter() - started
    assert len(set(seqs)) == 10_000
    assert first_bad(engine) is None
    print(f"\naudit writer ({engine.dialect.name}): 10,000 events in {elapsed:.2f} s = {10_000 / elapsed:,.0f}/s")


WRITER_PROCESS = """
import asyncio, sys
from gateway.audit.checkpoints import Signer
from gateway.audit.writer import AuditWriter
from gateway.db import create_db_engine
from tests.gateway.audit.events import make_event

async def main(url, key, worker, events):
    engine = create_db_engine(url)
    writer = AuditWriter(engine, signer=Signer.from_base64(key), checkpoint_every=25, batch_max=16)
    await writer.start()
    print("ready", flush=True)
    sys.stdin.readline()  # every process starts writing at once
    for start in range(0, events, 20):  # bursts of concurrent records: grouped commits racing the other processes
        await asyncio.gather(*(writer.record(make_event(worker * 100_000 + n)) for n in range(start, start + 20)))
    await writer.stop()
    engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


def test_writer_processes_on_postgresql_append_one_gap_free_chain(postgres_server: Any) -> None:
    """Four gateway-like processes write concurrently; `warden audit verify` passes, seqs run 1..N without gaps."""
    import os
    import subprocess
    import sys

    from gateway.audit.checkpoints import new_signing_key
    from tests.gateway.harness import REPO

    name = f"warden_chain_{os.getpid()}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE warden_template")
    url = postgres_server.url(name)
    key = new_signing_key()[0]
    processes, per_process = 4, 200
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_PROCESS, url, key, str(worker), str(per_process)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for worker in range(processes)
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        assert [writer.wait(90) for writer in writers] == [0] * processes
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
            writer.wait()
            for pipe in (writer.stdin, writer.stdout):
                if pipe is not None:
                    pipe.close()
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            seqs = [row[0] for row in conn.execute(text("SELECT seq FROM audit_events ORDER BY seq"))]
            kinds = [row[0] for row in conn.execute(text("SELECT kind FROM audit_checkpoints"))]
    finally:
        engine.dispose()
    assert seqs == list(range(1, processes * per_process + 1))
    assert kinds.count("checkpoint") >= processes * per_process // 25
    verified = subprocess.run(
        [sys.executable, "-m", "warden", "audit", "verify"],
        env={**env, "WARDEN_DATABASE_URL": url, "WARDEN_AUDIT_SIGNING_KEY": key},
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    postgres_server.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def test_async_outcomes_are_answered_at_once_and_still_committed_by_stop(engine: Engine) -> None:
    failures: list[int] = []
    writer = AuditWriter(engine, async_outcome=True)
    await writer.start()
    await writer.record(make_event(1))  # a decision: always awaited
    for n in range(2, 6):
        await writer.record_outcome(make_event(n, phase="outcome"), frozenset(), lambda: failures.append(1))
    await writer.record(make_event(6))  # queued after them: once it is committed, so are they
    refuse_inserts(engine)
    await writer.record_outcome(make_event(7, phase="outcome"), frozenset(), lambda: failures.append(7))
    await writer.stop()  # drains the queue: the refused outcome fails and is reported
    allow_inserts(engine)
    stored = [r.call_id for r in fetch_events(engine)]
    assert stored == [f"call-{n}" for n in range(1, 7)] and failures == [7]
    assert first_bad(engine) is None


async def test_outcomes_are_awaited_by_default(engine: Engine, other_engine: Engine) -> None:
    writer = AuditWriter(engine)
    await writer.start()
    await writer.record_outcome(make_event(1, phase="outcome"), frozenset(), lambda: None)
    assert [r.call_id for r in fetch_events(other_engine)] == ["call-1"]  # committed before it returned
    await writer.stop()
