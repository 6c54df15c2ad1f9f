"""gateway/cli/audit.py: `warden audit query|show|export|stats|verify|prune|keygen` against a real
database written by the real writer. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gateway.audit.checkpoints import Signer, new_signing_key
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
