"""gateway/audit/verify.py: every kind of tampering is caught and the right event is named;
a damaged database is reported, never raised. On SQLite and PostgreSQL.

The log under test: 20 events written by the real writer with a signing key and a
checkpoint every 5 events (checkpoints at seq 5, 10, 15, 20). Tampering is plain SQL,
as someone with write access to the database would do it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, select, text

from gateway.audit.chain import chain_hash
from gateway.audit.checkpoints import Signer
from gateway.audit.verify import verify
from gateway.db import create_db_engine
from gateway.models import AuditRecord
from tests.gateway.audit.events import make_event, make_signer, write

pytestmark = pytest.mark.anyio

EVENTS = AuditRecord.__table__  # type: ignore[attr-defined]


@pytest.fixture
async def signed_log(engine: Engine) -> Signer:
    signer = make_signer()
    await write(engine, [make_event(n) for n in range(20)], signer=signer, checkpoint_every=5, batch_max=3)
    report = verify(engine, signer.public)
    assert report.ok and report.events == 20 and report.checkpoints == 4, report
    return signer


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def typed_rows(conn: Connection, from_seq: int = 1) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(EVENTS).where(EVENTS.c.seq >= from_seq).order_by("seq"))]


def rehash(engine: Engine, from_seq: int, upto: int | None = None) -> None:
    """Recompute prev_hash and hash from ``from_seq`` on, as a careful forger with this code would."""
    with engine.begin() as conn:
        prev = conn.execute(select(EVENTS.c.hash).where(EVENTS.c.seq == from_seq - 1)).scalar() or "0" * 64
        for row in typed_rows(conn, from_seq):
            if upto is not None and row["seq"] > upto:
                break
            new_hash = chain_hash(prev, row)
            conn.execute(EVENTS.update().where(EVENTS.c.seq == row["seq"]).values(prev_hash=prev, hash=new_hash))
            prev = new_hash


def shift(engine: Engine, from_seq: int, by: int) -> None:
    """Renumber events from ``from_seq`` on by ``by`` (through negatives: no key collides midway)."""
    sql(engine, "UPDATE audit_events SET seq = -seq WHERE seq >= :s", s=from_seq)
    sql(engine, "UPDATE audit_events SET seq = -seq + :by WHERE seq < 0", by=by)


def damage(engine: Engine, signer: Signer | None) -> tuple[int | None, list[str]]:
    report = verify(engine, signer.public if signer else None)
    return report.first_bad, [d.kind for d in report.damage]


async def test_an_intact_signed_log_verifies(engine: Engine, signed_log: Signer) -> None:
    report = verify(engine, signed_log.public)
    assert (report.ok, report.first_seq, report.last_seq, report.signatures_checked) == (True, 1, 20, True)
    assert report.notes == []


async def test_an_edited_event_is_named(engine: Engine, signed_log: Signer) -> None:
    sql(engine, "UPDATE audit_events SET effect = 'deny' WHERE seq = 7")
    assert damage(engine, signed_log) == (7, ["altered"])


async def test_an_edited_event_with_its_own_hash_recomputed_is_named(engine: Engine, signed_log: Signer) -> None:
    sql(engine, "UPDATE audit_events SET identity = 'someone-else' WHERE seq = 7")
    rehash(engine, 7, upto=7)
    first, kinds = damage(engine, signed_log)
    assert (first, kinds) == (7, ["altered"])


async def test_a_rewrite_with_every_later_hash_recomputed_is_caught_at_the_next_checkpoint(
    engine: Engine, signed_log: Signer
) -> None:
    sql(engine, 'UPDATE audit_events SET arguments = \'{"n":"forged"}\' WHERE seq = 7')
    rehash(engine, 7)
    report = verify(engine, signed_log.public)
    assert report.first_bad == 6  # the stretch since the last good checkpoint (5): 6..10
    assert [(d.kind, "6..10" in d.message) for d in report.damage] == [("altered", True)]


async def test_a_deleted_event_is_named(engine: Engine, signed_log: Signer) -> None:
    sql(engine, "DELETE FROM audit_events WHERE seq = 7")
    assert damage(engine, signed_log) == (7, ["missing"])


async def test_deleted_and_renumbered_events_are_named(engine: Engine, signed_log: Signer) -> None:
    sql(engine, "DELETE FROM audit_events WHERE seq = 7")
    shift(engine, 8, -1)
    first, kinds = damage(engine, signed_log)
    assert first == 7 and kinds[0] == "reordered"


async def test_events_deleted_from_the_start_are_named(engine: Engine, signed_log: Signer) -> None:
    sql(engine, "DELETE FROM audit_events WHERE seq <= 3")
    report = verify(engine, signed_log.public)
    assert (report.first_bad, report.damage[0].kind) == (1, "missing")
    assert "no signed prune anchor" in report.damage[0].message


async def test_events_deleted_from_the_end_are_caught_up_to_the_newest_checkpoint(
    engine: Engine, signed_log: Signer
) -> None:
    sql(engine, "DELETE FROM audit_events WHERE seq >= 18")
    assert damage(engine, signed_log) == (18, ["missing"])


async def test_the_tail_after_the_newest_checkpoint_is_not_protected(engine: Engine, signed_log: Signer) -> None:
    """The documented limit: delete the tail and the checkpoints over it, and the rest still verifies."""
    sql(engine, "DELETE FROM audit_events WHERE seq >= 16")
    sql(engine, "DELETE FROM audit_checkpoints WHERE seq >= 16")
    assert verify(engine, signed_log.public).ok


async def test_an_inserted_event_is_named(engine: Engine, signed_log: Signer) -> None:
    shift(engine, 8, +1)
    with engine.begin() as conn:
        [seven] = typed_rows(conn, 7)[:1]
        forged = {**seven, "seq": 8, "call_id": "forged", "prev_hash": seven["hash"]}
        forged["hash"] = chain_hash(seven["hash"], forged)
        conn.execute(insert(EVENTS).values(forged))
    first, kinds = damage(engine, signed_log)
    assert first == 8 and kinds[0] == "inserted"


async def test_reordered_events_are_named(engine: Engine, signed_log: Signer) -> None:
    sql(engine, "UPDATE audit_events SET seq = -1 WHERE seq = 7")
    sql(engine, "UPDATE audit_events SET seq = 7 WHERE seq = 8")
    sql(engine, "UPDATE audit_events SET seq = 8 WHERE seq = -1")
    assert damage(engine, signed_log) == (7, ["reordered", "reordered"])


async def test_a_deleted_checkpoint_is_named(engine: Engine, signed_log: Signer) -> None:
    sql(engine, "DELETE FROM audit_checkpoints WHERE seq = 10")
    assert damage(engine, signed_log) == (10, ["checkpoint"])


async def test_a_forged_checkpoint_is_refused(engine: Engine, signed_log: Signer) -> None:
    """Rewrite everything from 7 and move the checkpoints along: the signatures no longer match."""
    sql(engine, 'UPDATE audit_events SET arguments = \'{"n":"forged"}\' WHERE seq = 7')
    rehash(engine, 7)
    for seq in (10, 15, 20):
        sql(
            engine,
            "UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_events WHERE seq = :s) WHERE seq = :s",
            s=seq,
        )
    report = verify(engine, signed_log.public)
    assert [(d.seq, d.kind) for d in report.damage][:3] == [(10, "checkpoint"), (15, "checkpoint"), (20, "checkpoint")]
    assert "invalid signature" in report.damage[0].message


async def test_checkpoints_signed_by_another_key_are_refused(engine: Engine, signed_log: Signer) -> None:
    report = verify(engine, make_signer().public)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar_one()
    assert [d.kind for d in report.damage][:stored] == ["checkpoint"] * stored
    assert "unknown key" in report.damage[0].message


async def test_without_a_key_the_chain_is_checked_and_the_report_says_signatures_were_not(
    engine: Engine, signed_log: Signer
) -> None:
    report = verify(engine, None)
    assert report.ok and not report.signatures_checked
    assert any("not checked" in note for note in report.notes)
    sql(engine, "UPDATE audit_events SET effect = 'deny' WHERE seq = 3")
    assert damage(engine, None) == (3, ["altered"])


async def test_a_log_without_checkpoints_says_what_it_cannot_detect(engine: Engine) -> None:
    await write(engine, [make_event(n) for n in range(3)])
    report = verify(engine, None)
    assert report.ok and any("no checkpoints" in note for note in report.notes)


async def test_garbage_values_are_reported_not_raised(engine: Engine, signed_log: Signer) -> None:
    if engine.dialect.name == "sqlite":  # SQLite stores whatever it is given
        sql(engine, "UPDATE audit_events SET ts = 'not a time', latency_total_ms = 'abc' WHERE seq = 4")
        sql(engine, "UPDATE audit_checkpoints SET ts = 'yesterday' WHERE seq = 15")
    else:
        sql(engine, "UPDATE audit_events SET ts = '1970-01-01T00:00:00Z' WHERE seq = 4")
        sql(engine, "UPDATE audit_checkpoints SET signature = 'not base64!' WHERE seq = 15")
    first, kinds = damage(engine, signed_log)
    assert first == 4 and "altered" in kinds and "checkpoint" in kinds


@pytest.mark.parametrize("table", ["audit_events", "audit_checkpoints"])
async def test_a_missing_table_is_reported_not_raised(engine: Engine, signed_log: Signer, table: str) -> None:
    sql(engine, f"DROP TABLE {table}")
    report = verify(engine, signed_log.public)
    assert not report.ok and "unreadable" in [d.kind for d in report.damage]


def test_a_file_that_is_not_a_database_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database file" * 100)
    engine = create_db_engine(f"sqlite:///{path}")
    report = verify(engine, make_signer().public)
    engine.dispose()
    assert not report.ok and {d.kind for d in report.damage} == {"unreadable"}


async def test_records_before_and_after_the_risk_field_verify_and_risk_is_covered(engine: Engine) -> None:
    """Version 1 records (written before ``risk`` existed) keep verifying beside version 2 ones, whose
    risk the hash covers; a risk written into an old record is caught too."""
    old = [make_event(n, version=1) for n in range(3)]
    new = [make_event(n, version=2, risk="destructive,writes") for n in range(3, 6)]
    await write(engine, [*old, *new])
    assert verify(engine, None).ok
    sql(engine, "UPDATE audit_events SET risk = 'read-only' WHERE seq = 5")
    assert damage(engine, None)[0] == 5
    sql(engine, "UPDATE audit_events SET risk = 'destructive,writes' WHERE seq = 5")
    assert verify(engine, None).ok
    sql(engine, "UPDATE audit_events SET risk = 'read-only' WHERE seq = 2")
    assert damage(engine, None)[0] == 2


async def test_records_with_content_size_and_hash_verify_and_the_content_fields_are_covered(engine: Engine) -> None:
    """Version 3 records (resource reads, prompt gets, completions) hash ``content_bytes`` and
    ``content_sha256`` beside version 2 ones; a size or hash written into any record is caught."""
    old = [make_event(n, version=2) for n in range(3)]
    new = [make_event(n, version=3, content_bytes=120 + n, content_sha256="ab" * 32) for n in range(3, 6)]
    await write(engine, [*old, *new])
    assert verify(engine, None).ok
    sql(engine, "UPDATE audit_events SET content_bytes = 7 WHERE seq = 5")
    assert damage(engine, None)[0] == 5
    sql(engine, "UPDATE audit_events SET content_bytes = 124 WHERE seq = 5")
    assert verify(engine, None).ok
    sql(engine, "UPDATE audit_events SET content_sha256 = 'cd' WHERE seq = 1")
    assert damage(engine, None)[0] == 1
