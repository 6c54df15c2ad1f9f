"""Audit log: durable write throughput (grouped commits vs one commit per event) and query latency.

1. Writes. ``--events`` events recorded concurrently by ``--producers`` tasks through the
   real ``AuditWriter`` (redaction, canonical JSON, hash chain, one commit per batch of up
   to 512), against the same writer with ``batch_max=1`` (one commit per event) over
   ``--baseline-events``. Durable: SQLite WAL with ``synchronous=FULL`` (PostgreSQL: its
   default ``synchronous_commit=on``), and ``record()`` returns only after the commit.
   Afterwards every row is counted and the chain verified: nothing lost.
2. Queries. ``--query-events`` generated events (30 days, 50 identities, 40 tools, realistic
   effects and outcomes) bulk-inserted with ``executemany`` (hashes are not computed: this
   part measures reads), then a mix of auditor queries through ``audit.query`` (the code the
   API and CLI run), each kind ``--repeat`` times with random values: p50 / p95 per kind and
   for the mix. A full-scan free-text search and whole-log counts are shown apart.

    python bench/audit_write.py [--events 50000] [--baseline-events 2000] [--query-events 1000000]
                                [--database-url postgresql+psycopg://...]   # an empty, disposable database
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from gateway.audit.query import EventFilter, count_events, get_event, query_events
from gateway.audit.verify import verify
from gateway.audit.writer import AuditWriter
from gateway.db import create_db_engine, migrate
from gateway.types import AuditEvent, args_hash, canonical_json

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "report",
    "invoice",
    "meeting",
    "notes",
    "quarterly",
    "budget",
    "deploy",
    "backup",
    "review",
]
IDENTITIES = [f"agent-{i}" for i in range(50)]
TOOLS = [(f"server-{i % 8}", f"tool_{i}") for i in range(40)]
RULES = [f"rule-{i}" for i in range(30)]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30


def fresh_engine(url: str | None, directory: Path, name: str) -> Engine:
    """A migrated, empty audit log: a new SQLite file, or the given database emptied."""
    engine = create_db_engine(url or f"sqlite:///{directory / name}.db")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoints"))
        conn.execute(text("DELETE FROM audit_events"))
    return engine


def call_event(n: int) -> AuditEvent:
    arguments = {"path": f"/notes/{n}", "query": "find the meeting notes from last week", "limit": 10}
    return AuditEvent(
        call_id=f"call-{n:08d}",
        phase="decision",
        method="tools/call",
        identity=IDENTITIES[n % len(IDENTITIES)],
        server="notes",
        tool="search",
        arguments=arguments,
        args_hash=args_hash(arguments),
        effect="allow",
        rule_ids=("allow-notes",),
        reason="granted by role reader",
        latency_policy_ms=0.05,
    )


async def write_rate(engine: Engine, count: int, producers: int, batch_max: int) -> tuple[float, float]:
    """(events/s, CPU microseconds per event over all threads) for ``count`` events."""
    events = [call_event(n) for n in range(count)]
    writer = AuditWriter(engine, batch_max=batch_max)
    await writer.start()

    async def produce(first: int) -> None:
        for n in range(first, count, producers):
            await writer.record(events[n])

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(produce(p) for p in range(producers)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await writer.stop()
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    report = verify(engine, None)
    assert stored == count, f"{count - stored} events lost"
    assert report.ok, f"chain broken: {report.damage[:1]}"
    return count / elapsed, cpu / count * 1e6


def bench_writes(args: argparse.Namespace, directory: Path) -> None:
    print(f"== durable writes: {args.producers} concurrent producers ==")
    grouped_engine = fresh_engine(args.database_url, directory, "grouped")
    grouped, grouped_cpu = asyncio.run(write_rate(grouped_engine, args.events, args.producers, 512))
    grouped_engine.dispose()
    single_engine = fresh_engine(args.database_url, directory, "single")
    single, _ = asyncio.run(write_rate(single_engine, args.baseline_events, args.producers, 1))
    single_engine.dispose()
    print(
        f"grouped commits (batch_max=512): {grouped:>10,.0f} events/s  ({args.events:,} events, all stored, chain ok)"
    )
    print(f"one commit per event (batch 1):  {single:>10,.0f} events/s  ({args.baseline_events:,} events)")
    print(f"ratio grouped / one per event:   {grouped / single:>10.1f} x")
    print(f"CPU per event, grouped (all threads of this process): {grouped_cpu:.1f} us")


def generated_rows(first: int, count: int, total: int, rng: random.Random) -> list[tuple[Any, ...]]:
    rows = []
    span = DAYS * 86400
    for n in range(first, first + count):
        identity = IDENTITIES[min(int(rng.paretovariate(1.2)) - 1, len(IDENTITIES) - 1)]
        server, tool = TOOLS[rng.randrange(len(TOOLS))]
        roll = rng.random()
        effect = "allow" if roll < 0.85 else "deny" if roll < 0.95 else "approve"
        phase = "decision"
        outcome = {"allow": None, "deny": "denied", "approve": "approval_required"}[effect]
        if effect == "allow" and n % 2:  # half the allowed rows are outcome events
            phase, roll = "outcome", rng.random()
            outcome = (
                "ok" if roll < 0.9 else "tool_error" if roll < 0.97 else "timeout" if roll < 0.99 else "upstream_error"
            )
        arguments = canonical_json({"path": f"/data/{rng.randrange(10_000)}", "query": " ".join(rng.sample(WORDS, 3))})
        rows.append(
            (
                n + 1, f"call-{n:08d}", phase, "tools/call", T0 + timedelta(seconds=n * span / total), identity, server,
                tool, arguments, "0" * 64, effect, canonical_json(rng.sample(RULES, rng.randint(0, 2))), "because",
                outcome, "", f"apr_{n:012d}" if effect == "approve" else None, 0.05, 12.5, 13.0, None, 1, "0" * 64,
                "0" * 64,
            )
        )  # fmt: skip
    return rows


def load_query_data(engine: Engine, count: int) -> None:
    columns = (
        "seq, call_id, phase, method, ts, identity, server, tool, arguments, args_hash, effect, rule_ids, reason, "
        "outcome, error, approval_id, latency_policy_ms, latency_upstream_ms, latency_total_ms, request_ref, version, "
        "prev_hash, hash"
    )
    marks = ", ".join(["?" if engine.dialect.name == "sqlite" else "%s"] * 23)
    rng = random.Random(7)
    started = time.perf_counter()
    for start in range(0, count, 50_000):
        rows = generated_rows(start, min(50_000, count - start), count, rng)
        if engine.dialect.name == "sqlite":  # the stored text form of a UTC timestamp
            rows = [(*r[:4], r[4].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[5:]) for r in rows]
        with engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO audit_events ({columns}) VALUES ({marks})", rows)
    with engine.begin() as conn:  # every approve decision's approval, decided: for the approval-state filter
        conn.execute(
            text(
                "INSERT INTO approvals (id, call_id, identity, server, tool, tool_name, arguments, args_hash, "
                "rule_ids, reason, approver_roles, state, created_at, expires_at) "
                "SELECT approval_id, call_id, identity, server, tool, tool, '{}', '', '[]', '', '[]', 'approved', "
                "ts, ts FROM audit_events WHERE approval_id IS NOT NULL"
            )
        )
        conn.execute(text("ANALYZE"))
    print(f"generated {count:,} events in {time.perf_counter() - started:.0f} s")


def query_mix(engine: Engine, rng: random.Random, count: int) -> dict[str, Callable[[], Any]]:
    def day() -> datetime:
        return T0 + timedelta(days=rng.randrange(DAYS - 1))

    def hour() -> datetime:
        return T0 + timedelta(hours=rng.randrange(DAYS * 24 - 1))

    def page(**filters: Any) -> Callable[[], Any]:
        def run() -> Any:
            values = {k: (v() if callable(v) else v) for k, v in filters.items()}
            order = values.pop("order", "desc")
            if "until_after" in values:
                values["until"] = values["since"] + values.pop("until_after")
            return query_events(engine, EventFilter(**values), limit=100, order=order)

        return run

    def second_page() -> Any:
        first = query_events(engine, EventFilter(identity=rng.choice(IDENTITIES[:10])), limit=100, order="desc")
        return query_events(engine, EventFilter(identity=first.events[0].identity), first.next_cursor, 100, "desc")

    return {
        "newest page": page(),
        "identity": page(identity=lambda: rng.choice(IDENTITIES)),
        "tool": page(tool=lambda: rng.choice(TOOLS)[1]),
        "server": page(server=lambda: rng.choice(TOOLS)[0]),
        "effect=deny": page(effect="deny"),
        "outcome=timeout": page(outcome="timeout"),
        "rule id": page(rule_id=lambda: rng.choice(RULES)),
        "approval state": page(approval_state="approved"),
        "1-hour range": page(since=hour, until_after=timedelta(hours=1), order="asc"),
        "identity + 1 day": page(identity=lambda: rng.choice(IDENTITIES), since=day, until_after=timedelta(days=1)),
        "identity+effect+tool": page(
            identity=lambda: rng.choice(IDENTITIES[:5]), effect="allow", tool=lambda: rng.choice(TOOLS)[1]
        ),
        "text (common word)": page(text=lambda: rng.choice(WORDS)),
        "next page (cursor)": second_page,
        "one event + trail": lambda: get_event(engine, rng.randrange(1, count + 1)),
        "stats 1 day by identity": lambda: count_events(
            engine, EventFilter(since=(d := day()), until=d + timedelta(days=1)), ["identity"]
        ),
    }


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_queries(args: argparse.Namespace, directory: Path) -> None:
    print(f"\n== queries over {args.query_events:,} events ==")
    engine = fresh_engine(args.database_url, directory, "query")
    load_query_data(engine, args.query_events)
    rng = random.Random(11)
    mix = query_mix(engine, rng, args.query_events)
    every: list[float] = []
    print(f"{'query (page of 100)':<26}{'p50 ms':>9}{'p95 ms':>9}")
    for name, run in mix.items():
        run()  # warm
        samples = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1000)
        every += samples
        print(f"{name:<26}{statistics.median(samples):>9.1f}{percentile(samples, 0.95):>9.1f}")
    print(f"{'MIX (all of the above)':<26}{statistics.median(every):>9.1f}{percentile(every, 0.95):>9.1f}")
    print("\nshown apart (not paged by an index):")
    for name, run in {
        "text (absent word: full scan)": lambda: query_events(engine, EventFilter(text="zebra"), limit=100),
        "stats whole log by identity": lambda: count_events(engine, EventFilter(), ["identity"]),
    }.items():
        started = time.perf_counter()
        run()
        print(f"{name:<32}{(time.perf_counter() - started) * 1000:>9.0f} ms")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events written with grouped commits")
    parser.add_argument("--baseline-events", type=int, default=2_000, help="events written one commit each")
    parser.add_argument("--producers", type=int, default=1000, help="concurrent recording tasks")
    parser.add_argument("--query-events", type=int, default=1_000_000, help="events generated for the queries")
    parser.add_argument("--repeat", type=int, default=40, help="runs of each query kind")
    parser.add_argument("--database-url", default=None, help="an empty, disposable database (default: SQLite files)")
    parser.add_argument("--skip-writes", action="store_true")
    parser.add_argument("--skip-queries", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="warden-bench-") as tmp:
        if not args.skip_writes:
            bench_writes(args, Path(tmp))
        if not args.skip_queries:
            bench_queries(args, Path(tmp))


if __name__ == "__main__":
    main()
