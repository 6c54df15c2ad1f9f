"""gateway/audit/prune.py: old events go, a signed anchor stays, and the rest still verifies.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from gateway.audit.checkpoints import Signer
from gateway.audit.errors import AuditError
from gateway.audit.prune import prune
from gateway.audit.query import fetch_events
from gateway.audit.verify import verify
from tests.gateway.audit.events import make_event, make_signer, write

pytestmark = pytest.mark.anyio

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)


async def write_days(engine: Engine, signer: Signer, days: range, per_day: int = 4) -> None:
    """``per_day`` events on each day of ``days`` (DAY0 + d), in time order, checkpoint every 3."""
    events = [make_event(d * 100 + i, ts=DAY0 + timedelta(days=d, minutes=i)) for d in days for i in range(per_day)]
    writer_events = sorted(events, key=lambda e: e.ts or DAY0)
    for event in writer_events:  # one by one: seq order follows time order
        await write(engine, [event], signer=signer, checkpoint_every=3)


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


async def test_prune_deletes_the_old_prefix_and_the_rest_verifies(engine: Engine) -> None:
    signer = make_signer()
    await write_days(engine, signer, range(5))  # seq 1..20, 4 per day
    result = prune(engine, DAY0 + timedelta(days=2), signer)
    assert (result.deleted, result.anchor_seq) == (8, 8)
    assert [r.seq for r in fetch_events(engine, limit=100)] == list(range(9, 21))
    report = verify(engine, signer.public)
    assert report.ok, report
    assert (report.anchor_seq, report.first_seq, report.last_seq) == (8, 9, 20)
    with engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind, seq FROM audit_checkpoints ORDER BY seq")).all()
    # One writer per event: each signs its tail at shutdown, so every kept event has a checkpoint.
    assert [tuple(k) for k in kinds] == [("anchor", 8), *(("checkpoint", seq) for seq in range(9, 21))]


async def test_the_chain_continues_after_a_prune_and_a_second_prune(engine: Engine) -> None:
    signer = make_signer()
    await write_days(engine, signer, range(3))
    prune(engine, DAY0 + timedelta(days=1), signer)
    await write_days(engine, signer, range(3, 5))  # a fresh writer loads its head after the prune
    assert verify(engine, signer.public).ok
    result = prune(engine, DAY0 + timedelta(days=4), signer)
    assert result.anchor_seq == 16
    report = verify(engine, signer.public)
    assert report.ok and report.anchor_seq == 16 and report.events == 4


async def test_pruning_everything_keeps_the_numbering_and_the_chain(engine: Engine) -> None:
    signer = make_signer()
    await write_days(engine, signer, range(2))
    assert prune(engine, DAY0 + timedelta(days=30), signer).deleted == 8
    assert count(engine, "audit_events") == 0
    assert verify(engine, signer.public).ok
    seqs = await write(engine, [make_event(1)], signer=signer, checkpoint_every=3)
    assert seqs == [9]  # continues after the anchor, chained to it
    assert verify(engine, signer.public).ok


async def test_nothing_old_enough_prunes_nothing(engine: Engine) -> None:
    signer = make_signer()
    await write_days(engine, signer, range(2))
    result = prune(engine, DAY0 - timedelta(days=1), signer)
    assert (result.deleted, result.anchor_seq) == (0, None)
    assert count(engine, "audit_events") == 8


async def test_a_damaged_prefix_is_never_pruned(engine: Engine) -> None:
    signer = make_signer()
    await write_days(engine, signer, range(3))
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET effect = 'deny' WHERE seq = 2"))
    with pytest.raises(AuditError, match="event 2"):
        prune(engine, DAY0 + timedelta(days=2), signer)
    assert count(engine, "audit_events") == 12


async def test_deletions_after_a_prune_are_still_caught(engine: Engine) -> None:
    signer = make_signer()
    await write_days(engine, signer, range(3))
    prune(engine, DAY0 + timedelta(days=1), signer)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 5"))
    report = verify(engine, signer.public)
    assert (report.first_bad, report.damage[0].kind) == (5, "missing")


async def test_a_forged_anchor_is_refused(engine: Engine) -> None:
    """Delete more events and move the anchor over them: its signature gives it away."""
    signer = make_signer()
    await write_days(engine, signer, range(3))
    prune(engine, DAY0 + timedelta(days=1), signer)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq <= 6"))
        conn.execute(
            text(
                "UPDATE audit_checkpoints SET seq = 6, hash = (SELECT prev_hash FROM audit_events WHERE seq = 7) "
                "WHERE kind = 'anchor'"
            )
        )
    report = verify(engine, signer.public)
    assert not report.ok
    assert report.damage[0].kind == "anchor" and "invalid signature" in report.damage[0].message


def test_prune_refuses_a_naive_time(engine: Engine) -> None:
    with pytest.raises(ValueError, match="timezone"):
        prune(engine, datetime(2026, 1, 1), make_signer())
