"""finetune.mine: on hand-written events, and on the audit database a real gateway wrote while a real
MCP client made allowed, denied, redacted, rate-limited and held calls (tests/gateway/harness.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from mcp.client.client import Client
from mcp_types import RequestParamsMeta
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from agent.loop import Transcript, new_request_id
from agent.tools import REQUEST_ID_META_KEY
from finetune import data, mine
from finetune.catalog import from_gateway
from finetune.cli import finetune_app
from gateway.audit.query import EventFilter, export_lines, iter_events
from gateway.db import create_db_engine
from tests.gateway.harness import (
    Gateway,
    connect,
    fixture_policy_dir,
    free_port,
    run_gateway,
    run_notes_upstream,
    text_of,
    upstreams_yaml,
)

CATALOG = [
    {
        "type": "function",
        "function": {
            "name": "notes__add_note",
            "description": "",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "notes__delete_note",
            "description": "",
            "parameters": {"type": "object", "properties": {"note_id": {"type": "integer"}}, "required": ["note_id"]},
        },
    },
]


def _events() -> list[dict]:
    return [
        {
            "call_id": "c1",
            "phase": "decision",
            "identity": "ana",
            "server": "notes",
            "tool": "add_note",
            "arguments": {"text": "buy milk"},
            "effect": "allow",
            "request_ref": "r1",
        },
        {
            "call_id": "c1",
            "phase": "outcome",
            "identity": "ana",
            "server": "notes",
            "tool": "add_note",
            "outcome": "ok",
        },
        {
            "call_id": "c2",
            "phase": "decision",
            "identity": "ana",
            "server": "notes",
            "tool": "delete_note",
            "arguments": {"note_id": 7},
            "effect": "deny",
            "reason": "only admins delete notes",
        },
        {
            "call_id": "c3",
            "phase": "decision",
            "identity": "ana",
            "server": "notes",
            "tool": "add_note",
            "arguments": {"text": "x"},
            "effect": "allow",
        },
        {
            "call_id": "c3",
            "phase": "outcome",
            "identity": "ana",
            "server": "notes",
            "tool": "add_note",
            "outcome": "tool_error",
        },
    ]


def test_allowed_ok_calls_and_denials_become_examples(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in _events()))
    examples, stats = mine.mine(mine.read_events(p), CATALOG, requests={"r1": "Add a note: buy milk"})
    assert stats == {"allowed_ok": 1, "denied": 1, "with_request": 1, "skipped": 1, "redacted": 0, "invalid": 0}
    ok, denied = examples
    assert ok["messages"][0]["content"] == "Add a note: buy milk"
    assert data.calls(ok["messages"][-1]) == [("notes__add_note", {"text": "buy milk"})]
    assert not denied["messages"][-1].get("tool_calls") and "only admins" in denied["messages"][-1]["content"]
    assert all(data.validate(ex) == [] for ex in examples)


def test_broken_audit_line_is_named(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    p.write_text(json.dumps(_events()[0]) + "\n{oops\n")
    with pytest.raises(data.DataError, match=r"audit\.jsonl:2"):
        mine.read_events(p)


# ---- a real gateway's audit database ------------------------------------------------------------

TASKS = {
    "time": "What time is it in Paris, and then in Tokyo?",
    "note": "Remember that I need to buy milk.",
    "delete": "Throw away my first note.",
}
"""What the user asked the agent, per request; the agent's transcripts record it, the audit log does not."""

WRITER_STATS = {"allowed_ok": 6, "denied": 2, "with_request": 3, "skipped": 2, "redacted": 1, "invalid": 0}


@dataclass(frozen=True)
class Audited:
    gw: Gateway
    transcripts: Path


async def _call(client: Client, name: str, args: dict[str, Any], ref: str | None = None) -> Any:
    meta = cast(RequestParamsMeta, {REQUEST_ID_META_KEY: ref}) if ref else None
    return await client.call_tool(name, args, meta=meta)


async def _make_calls(gw: Gateway, refs: dict[str, str]) -> None:
    """Calls as an agent makes them (request id in `_meta`); each answer is checked so the log is known."""
    ok, refused = [], []
    async with connect(gw, "writer-agent") as w:
        ok.append(await _call(w, "time__get_current_time", {"timezone": "Europe/Paris"}, refs["time"]))
        ok.append(await _call(w, "time__get_current_time", {"timezone": "Asia/Tokyo"}, refs["time"]))
        ok.append(await _call(w, "notes__add_note", {"title": "groceries", "body": "buy milk"}, refs["note"]))
        ok.append(await _call(w, "notes__add_note", {"title": "vault", "body": "b", "secret": "hunter2"}))
        refused.append(await _call(w, "notes__delete_note", {"id": 1}, refs["delete"]))
        antarctic = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Antarctica/Troll"}
        refused.append(await _call(w, "time__convert_time", antarctic))
        refused.append(await _call(w, "notes__add_note", {"title": "publish launch", "body": "b"}))  # held
        ok += [await _call(w, "notes__echo", {"text": f"echo {i}"}) for i in range(3)]
        refused.append(await _call(w, "notes__echo", {"text": "echo 3"}))  # rate limit rl-echo
    async with connect(gw, "reader-agent") as r:
        ok.append(await _call(r, "time__get_current_time", {"timezone": "UTC"}))
        refused.append(await _call(r, "notes__add_note", {"title": "t", "body": "b"}))  # not granted
    assert not any(result.is_error for result in ok), [text_of(result) for result in ok]
    assert all(result.is_error for result in refused), [text_of(result) for result in refused]


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    tmp = tmp_path_factory.mktemp("mine")
    identities = ["reader-agent", "writer-agent"]
    with (
        run_notes_upstream(tmp) as notes,
        run_gateway(
            tmp, fixture_policy_dir(tmp), upstreams_yaml(notes.url), identities, WARDEN_APPROVAL_HOLD_S="0"
        ) as gw,
    ):
        refs = {name: new_request_id() for name in TASKS}
        for name, task in TASKS.items():  # the agent's own transcript writer
            Transcript(tmp / "transcripts" / f"{refs[name]}.jsonl", refs[name]).write("start", task=task)
        anyio.run(_make_calls, gw, refs)
        yield Audited(gw, tmp / "transcripts")


def _catalog(gw: Gateway, identity: str) -> list[dict[str, Any]]:
    return from_gateway(gw.mcp_url, gw.keys[identity])


def _with_call(examples: list[dict[str, Any]], name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [ex for ex in examples if data.calls(ex["messages"][-1]) == [(name, args)]]


def test_a_real_audit_database_mines_into_calls_and_refusals(audited: Audited) -> None:
    gw = audited.gw
    requests = mine.read_requests(audited.transcripts)
    events = mine.read_db(gw.database_url, "writer-agent")
    examples, stats = mine.mine(events, _catalog(gw, "writer-agent"), "writer-agent", requests=requests)
    assert stats == WRITER_STATS
    assert all(data.validate(ex) == [] for ex in examples)
    by_request = {ex["messages"][0]["content"]: ex for ex in examples}

    paris = by_request[TASKS["time"]]  # allowed, ok: the call, under the user's own words
    assert data.calls(paris["messages"][-1]) == [("time__get_current_time", {"timezone": "Europe/Paris"})]
    (tokyo,) = _with_call(examples, "time__get_current_time", {"timezone": "Asia/Tokyo"})
    assert tokyo["messages"][0]["content"] == "Please get current time with timezone Asia/Tokyo."  # 2nd call: phrased
    (note,) = _with_call(examples, "notes__add_note", {"title": "groceries", "body": "buy milk"})
    assert note["messages"][0]["content"] == TASKS["note"]

    denied = by_request[TASKS["delete"]]  # denied by rule deny-delete: a text answer, the tool still offered
    assert not denied["messages"][-1].get("tool_calls") and "never deleted" in denied["messages"][-1]["content"]
    assert "notes__delete_note" in {t["function"]["name"] for t in denied["tools"]}
    (antarctic,) = [ex for ex in examples if "Antarctica/Troll" in ex["messages"][0]["content"]]
    assert not antarctic["messages"][-1].get("tool_calls") and "Antarctic" in antarctic["messages"][-1]["content"]

    everything = json.dumps(examples)
    assert "hunter2" not in everything and "[REDACTED]" not in everything  # the redacted call is dropped
    assert "publish launch" not in everything and "echo 3" not in everything  # held, rate-limited: skipped
    assert len(_with_call(examples, "notes__echo", {"text": "echo 0"})) == 1


def test_the_identity_filter_keeps_other_identities_calls_out(audited: Audited) -> None:
    gw = audited.gw
    reader, stats = mine.mine(mine.read_db(gw.database_url, "reader-agent"), _catalog(gw, "reader-agent"))
    assert stats["allowed_ok"] == 1 and stats["denied"] == 0  # its add_note is not in its catalog: skipped
    assert data.calls(reader[0]["messages"][-1]) == [("time__get_current_time", {"timezone": "UTC"})]
    writer_catalog = _catalog(gw, "writer-agent")
    _, everyone = mine.mine(mine.read_db(gw.database_url), writer_catalog)
    assert (everyone["allowed_ok"], everyone["denied"]) == (7, 3)
    _, filtered = mine.mine(mine.read_db(gw.database_url), writer_catalog, "writer-agent")
    assert filtered["allowed_ok"] == 6 and filtered["denied"] == 2


def test_a_jsonl_export_mines_like_the_database(audited: Audited, tmp_path: Path) -> None:
    gw = audited.gw
    engine = create_db_engine(gw.database_url)
    try:
        export = tmp_path / "audit.jsonl"
        export.write_text("".join(export_lines(iter_events(engine, EventFilter()), "jsonl")))
    finally:
        engine.dispose()
    catalog, requests = _catalog(gw, "writer-agent"), mine.read_requests(audited.transcripts)
    from_file = mine.mine(mine.read_events(export), catalog, "writer-agent", requests=requests)
    from_db = mine.mine(mine.read_db(gw.database_url, "writer-agent"), catalog, "writer-agent", requests=requests)
    assert json.dumps(from_file) == json.dumps(from_db)


def test_mining_opens_the_database_query_only(audited: Audited) -> None:
    engine, shown = mine.open_read_only(audited.gw.database_url)
    try:
        with engine.connect() as conn, pytest.raises(OperationalError, match="readonly"):
            conn.execute(text("DELETE FROM audit_events"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() > 0
    finally:
        engine.dispose()
    assert shown == audited.gw.database_url


def test_unreadable_audit_databases_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    with pytest.raises(mine.MineError, match=r"no SQLite database file at .*nowhere\.db"):
        list(mine.read_db(f"sqlite:///{missing}"))
    assert not missing.exists()  # never created
    with pytest.raises(mine.MineError, match="not a database URL"):
        list(mine.read_db("not a url"))
    url = f"postgresql://miner:s3cret@127.0.0.1:{free_port()}/warden"
    with pytest.raises(mine.MineError, match=r"cannot read the audit log at postgresql://miner:\*\*\*@") as e:
        list(mine.read_db(url))
    assert "s3cret" not in str(e.value)
    other = tmp_path / "other.db"
    engine = create_db_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    with pytest.raises(mine.MineError, match="no such table: audit_events"):
        list(mine.read_db(f"sqlite:///{other}"))


def test_transcripts_map_request_ids_to_the_users_words(tmp_path: Path) -> None:
    Transcript(tmp_path / "a" / "run.jsonl", "req_1").write("start", task="What time is it?")
    Transcript(tmp_path / "a" / "run.jsonl", "req_1").write("end", status="answered")
    assert mine.read_requests(tmp_path) == {"req_1": "What time is it?"}
    with pytest.raises(mine.MineError, match="does not exist"):
        mine.read_requests(tmp_path / "none")


def test_data_build_mines_the_audit_database(audited: Audited, tmp_path: Path) -> None:
    gw = audited.gw
    args = ["data", "build", "--out", str(tmp_path), "--gateway", gw.mcp_url, "--api-key", gw.keys["writer-agent"]]
    args += ["--audit-db", gw.database_url, "--audit-identity", "writer-agent"]
    args += ["--transcripts", str(audited.transcripts), "--synthetic", "0", "--per-catalog", "20", "--split", "example"]
    result = CliRunner().invoke(finetune_app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "summary.json").read_text())["mined"] == WRITER_STATS
    train = data.read_jsonl(tmp_path / "train.jsonl") + data.read_jsonl(tmp_path / "eval.jsonl")
    assert {TASKS["time"], TASKS["delete"]} <= {ex["messages"][0]["content"] for ex in train}


def test_data_build_names_what_failed(audited: Audited, tmp_path: Path) -> None:
    gw = audited.gw
    base = ["data", "build", "--out", str(tmp_path), "--synthetic", "0", "--audit-db", gw.database_url]
    no_catalog = CliRunner().invoke(finetune_app, base)
    assert no_catalog.exit_code == 1 and "needs the tools' schemas" in no_catalog.output
    wrong = "wdn_aaaaaaaa_" + "b" * 43
    bad_key = CliRunner().invoke(finetune_app, [*base, "--gateway", gw.mcp_url, "--api-key", wrong])
    assert bad_key.exit_code == 1 and "refused the API key" in bad_key.output
    keyed = ["--gateway", gw.mcp_url, "--api-key", gw.keys["writer-agent"]]
    missing = CliRunner().invoke(finetune_app, [*base[:-1], f"sqlite:///{tmp_path}/none.db", *keyed])
    assert missing.exit_code == 1 and "no SQLite database file" in missing.output
