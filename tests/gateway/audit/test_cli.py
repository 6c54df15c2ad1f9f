"""gateway/cli/audit.py: `warden audit query|show|export|stats|verify|checkpoint|prune|keygen` against a real
database written by the real writer. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gateway.audit.chain import chain_hash
from gateway.audit.checkpoints import Signer, new_signing_key
from gateway.audit.verify import _chunk
from tests.gateway.audit.events import make_event, write
from warden.cli import app

pytestmark = pytest.mark.anyio

runner = CliRunner()
T0 = datetime(2026, 2, 1, tzinfo=UTC)
SEED, PUBLIC = new_signing_key()


@pytest.fixture
async def log(engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """40 events over 40 days (identity alternating), signed, with the CLI pointed at the database."""
    monkeypatch.setenv("WARDEN_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no stray warden.yaml
    events = [
        make_event(
            n, identity=("agent-a", "agent-b")[n % 2], effect=("allow", "deny")[n % 4 == 3], ts=T0 + timedelta(days=n)
        )
        for n in range(40)
    ]
    for event in events:  # one at a time: seq order is time order
        await write(engine, [event], signer=Signer.from_base64(SEED), checkpoint_every=5)
    return engine


def run(*args: str, key: str | None = None) -> tuple[int, str, str]:
    env = {"WARDEN_AUDIT_SIGNING_KEY": key} if key else {}
    result = runner.invoke(app, ["audit", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


async def test_query_prints_a_table_and_the_next_cursor(log: Engine) -> None:
    code, out, _ = run("query", "--identity", "agent-b", "--limit", "5")
    assert code == 0
    assert "agent-b" in out and "agent-a" not in out
    assert "more: --cursor 10" in out


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
async def test_query_in_machine_formats(log: Engine, fmt: str) -> None:
    code, out, _ = run("query", "--effect", "deny", "--format", fmt, "--limit", "1000")
    assert code == 0
    if fmt == "json":
        seqs = [e["seq"] for e in json.loads(out)["events"]]
    elif fmt == "jsonl":
        seqs = [json.loads(line)["seq"] for line in out.splitlines()]
    else:
        seqs = [int(row["seq"]) for row in csv.DictReader(out.splitlines())]
    assert seqs == list(range(4, 41, 4))


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--since", "2026-03-01", "--until", "2026-02-01"], "--until"),
        (["--effect", "maybe"], "--effect"),
        (["--since", "soon"], "--since"),
        (["--approval-state", "granted"], "--approval-state"),
        (["--format", "xml"], "--format"),
    ],
)
async def test_bad_options_exit_2_naming_the_option(log: Engine, args: list[str], option: str) -> None:
    code, _, err = run("query", *args)
    assert code == 2 and option in err and "Traceback" not in err


async def test_show_one_event_with_its_trail(log: Engine) -> None:
    code, out, _ = run("show", "3", "--format", "json")
    assert code == 0
    body = json.loads(out)
    assert body["event"]["seq"] == 3 and [e["seq"] for e in body["trail"]] == [3]
    assert run("show", "999")[0] == 1


async def test_export_a_range_to_files(log: Engine, tmp_path: Path) -> None:
    code, _, err = run(
        "export", "--since", "2026-02-11", "--until", "2026-02-21", "--output", str(tmp_path / "a.jsonl")
    )
    assert code == 0 and "exported 10 events" in err
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(11, 21))
    code, _, _ = run("export", "--format", "csv", "--identity", "agent-a", "--output", str(tmp_path / "a.csv"))
    with (tmp_path / "a.csv").open(newline="") as f:
        assert [int(row["seq"]) for row in csv.DictReader(f)] == list(range(1, 41, 2))


async def test_stats_by_identity_and_effect(log: Engine) -> None:
    code, out, _ = run("stats", "--by", "identity", "--by", "effect", "--format", "json")
    assert code == 0
    counts = {(r["group"]["identity"], r["group"]["effect"]): r["events"] for r in json.loads(out)}
    assert counts == {("agent-a", "allow"): 20, ("agent-b", "allow"): 10, ("agent-b", "deny"): 10}
    assert run("stats", "--by", "colour")[0] == 2
    code, out, _ = run("stats")
    assert code == 0 and "agent-a" in out


async def test_verify_passes_then_names_the_edited_event(log: Engine) -> None:
    code, out, _ = run("verify", key=SEED)
    assert code == 0 and "OK" in out and "signatures checked" in out
    with log.begin() as conn:
        conn.execute(text("UPDATE audit_events SET identity = 'nobody' WHERE seq = 17"))
    code, out, _ = run("verify", key=SEED)
    assert code == 1 and "first bad event: 17" in out
    code, out, _ = run("verify", "--format", "json", key=SEED)
    assert code == 1 and json.loads(out)["first_bad_event"] == 17


async def test_verify_without_a_key_says_signatures_were_not_checked(log: Engine) -> None:
    code, out, _ = run("verify")
    assert code == 0 and "NOT checked" in out and "not checked" in out


def test_verify_on_a_file_that_is_not_a_database_reports_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"\x00garbage" * 1000)
    monkeypatch.setenv("WARDEN_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.chdir(tmp_path)
    code, out, err = run("verify")
    assert code == 1 and "DAMAGED" in out and "unreadable" in out and "Traceback" not in out + err


async def test_prune_needs_the_key_and_keeps_the_log_verifiable(log: Engine) -> None:
    code, _, err = run("prune", "--before", "2026-02-11", "--yes")
    assert code == 2 and "audit_signing_key" in err
    code, out, _ = run("prune", "--before", "2026-02-11", "--yes", key=SEED)
    assert code == 0 and "pruned 10 events" in out
    code, out, _ = run("verify", key=SEED)
    assert code == 0 and "prune anchor at seq 10" in out


def test_keygen_prints_a_usable_key_pair() -> None:
    code, out, _ = run("keygen")
    assert code == 0
    values = dict(line.split("=", 1) for line in out.splitlines())
    signer = Signer.from_base64(values["WARDEN_AUDIT_SIGNING_KEY"])
    assert signer.key_id and values["WARDEN_AUDIT_PUBLIC_KEY"]


# ---- truncation and rollback attacks (issue 12, item 3) -------------------------------------


def sql(engine: Engine, statement: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement))


def recompute_chain_after_editing(engine: Engine, seq: int) -> None:
    """An attacker with write access: edit event ``seq`` and recompute every later hash."""
    rows = _chunk(engine, 0, None, 10_000)
    prev = rows[0]["prev_hash"]
    with engine.begin() as conn:
        for row in rows:
            if row["seq"] == seq:
                row["reason"] = "nothing to see"
            if row["seq"] >= seq:
                row["prev_hash"], row["hash"] = prev, chain_hash(prev, row)
                conn.execute(
                    text(
                        "UPDATE audit_events SET reason = :reason, prev_hash = :prev_hash, hash = :hash "
                        "WHERE seq = :seq"
                    ),
                    row,
                )
            prev = row["hash"]


async def test_verify_fails_when_every_checkpoint_is_deleted_and_an_event_edited_with_the_chain_recomputed(
    log: Engine,
) -> None:
    sql(log, "DELETE FROM audit_checkpoints")
    recompute_chain_after_editing(log, 12)
    assert run("verify")[0] == 0  # without a key nothing shows: the chain is consistent
    code, out, _ = run("verify", key=SEED)
    assert code == 1 and "no signed checkpoint" in out
    code, out, _ = run("verify", "--format", "json", key=SEED)
    assert json.loads(out)["damage"][0]["kind"] == "missing"


async def test_verify_fails_when_all_checkpoints_and_all_but_two_events_are_deleted(log: Engine) -> None:
    sql(log, "DELETE FROM audit_checkpoints")
    sql(log, "DELETE FROM audit_events WHERE seq > 2")
    code, out, _ = run("verify", key=SEED)
    assert code == 1 and "no signed checkpoint" in out


async def test_verify_fails_on_an_emptied_log_with_a_key_and_against_a_kept_anchor(log: Engine, tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.json"
    assert run("checkpoint", "--out", str(anchor))[0] == 0
    sql(log, "DELETE FROM audit_checkpoints")
    sql(log, "DELETE FROM audit_events")
    code, out, _ = run("verify", key=SEED)
    assert code == 1 and "no signed checkpoint" in out
    code, out, _ = run("verify", "--anchor", str(anchor))  # even with no key configured
    assert code == 1 and "event 40 of the kept anchor is gone" in out


async def test_a_kept_anchor_detects_the_newest_checkpoint_deleted_with_the_events_after_the_previous_one(
    log: Engine, tmp_path: Path
) -> None:
    anchor = tmp_path / "anchor.json"
    code, out, _ = run("checkpoint", "--out", str(anchor))
    kept = json.loads(anchor.read_text())
    assert code == 0 and kept["seq"] == 40 and kept["signature"]
    sql(log, "DELETE FROM audit_checkpoints WHERE seq > 35")
    sql(log, "DELETE FROM audit_events WHERE seq > 35")
    assert run("verify", key=SEED)[0] == 0  # the shorter log is consistent in itself (documented limit)
    code, out, _ = run("verify", "--anchor", str(anchor), key=SEED)
    assert code == 1 and "truncated" in out
    code, out, _ = run("verify", "--expect-seq", "40", "--expect-hash", kept["hash"], key=SEED)
    assert code == 1 and "truncated" in out


async def test_a_kept_anchor_passes_on_an_untouched_log_and_a_forged_one_is_refused(
    log: Engine, tmp_path: Path
) -> None:
    anchor = tmp_path / "anchor.json"
    run("checkpoint", "--out", str(anchor))
    assert run("verify", "--anchor", str(anchor), key=SEED)[0] == 0
    forged = json.loads(anchor.read_text())
    forged["seq"] = 41
    anchor.write_text(json.dumps(forged))
    code, out, _ = run("verify", "--anchor", str(anchor), key=SEED)
    assert code == 1 and "invalid signature" in out
    assert run("verify", "--expect-seq", "40", key=SEED)[0] == 2  # --expect-hash missing


async def test_a_kept_anchor_detects_the_anchored_event_rewritten_with_recomputed_hashes(
    log: Engine, tmp_path: Path
) -> None:
    anchor = tmp_path / "anchor.json"
    run("checkpoint", "--out", str(anchor))
    sql(log, "DELETE FROM audit_checkpoints")
    recompute_chain_after_editing(log, 30)
    code, out, _ = run("verify", "--anchor", str(anchor))
    assert code == 1 and "does not have the hash the kept anchor records" in out
