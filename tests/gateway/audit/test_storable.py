"""gateway/audit/storable.py (through the real writer and the real gateway): input the audit log
cannot store as sent is made storable per event, and one bad event never fails another's.

Every test runs on SQLite and on PostgreSQL (PostgreSQL rejects NUL in text and enforces
VARCHAR lengths; UTF-8 encoding rejects lone surrogates on both).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from gateway.audit.errors import AuditError
from gateway.audit.query import fetch_events
from gateway.audit.rows import StorageLimits
from gateway.audit.storable import MAX_DEPTH, TOO_DEEP, TRUNCATED_KEY
from gateway.audit.verify import verify
from gateway.audit.writer import AuditWriter
from gateway.models import AuditRecord
from tests.gateway.audit.events import first_bad, make_event, write
from tests.gateway.harness import (
    Gateway,
    NotesUpstream,
    connect,
    fixture_policy_dir,
    run_gateway,
    text_of,
    upstreams_yaml,
)

pytestmark = pytest.mark.anyio

SURROGATE, NUL = "\ud800", "\x00"
LONG = "r" * 5000


def stored(engine: Engine) -> dict[str, AuditRecord]:
    return {r.call_id: r for r in fetch_events(engine, limit=1000)}


@pytest.mark.parametrize("bad", [SURROGATE, NUL, f"ok{SURROGATE}x{NUL}y"], ids=["surrogate", "nul", "both"])
async def test_invalid_characters_in_any_field_are_replaced_and_noted(engine: Engine, bad: str) -> None:
    events = [
        make_event(1, request_ref=f"ref{bad}"),
        make_event(2, call_id=f"call-2{bad}"),
        make_event(3, reason=f"because{bad}", error=f"failed{bad}"),
        make_event(4, identity=f"who{bad}", server=f"srv{bad}", tool=f"tool{bad}", rule_ids=(f"r{bad}",)),
        make_event(5, arguments={f"key{bad}": f"value{bad}", "nested": [{"deep": bad}]}, args_hash="h"),
        make_event(6),
    ]
    seqs = await write(engine, events)
    assert sorted(seqs) == list(range(1, 7))
    rows = list(fetch_events(engine, limit=100))
    assert len(rows) == 6 and first_bad(engine) is None
    for row in rows:
        for value in (row.call_id, row.request_ref or "", row.reason, row.error, row.identity, row.arguments):
            assert SURROGATE not in value and NUL not in value
    by_seq = {r.seq: r for r in rows}
    assert (by_seq[seqs[0]].request_ref or "").startswith("ref")
    assert "request_ref: invalid characters replaced" in by_seq[seqs[0]].error
    deep = json.loads(by_seq[seqs[4]].arguments)["nested"][0]["deep"]
    if SURROGATE in bad:  # not encodable: replaced, and noted
        assert "arguments: invalid characters replaced" in by_seq[seqs[4]].error
        assert deep == bad.replace(SURROGATE, "\ufffd").replace(NUL, "\ufffd")
    else:  # JSON escapes NUL in the stored document: kept exactly
        assert deep == bad
    assert by_seq[seqs[5]].error == ""  # a clean event is stored as sent


async def test_identifiers_longer_than_their_column_are_cut_with_a_hash_suffix(engine: Engine) -> None:
    seqs = await write(
        engine, [make_event(1, request_ref=LONG), make_event(2, request_ref=LONG + "x"), make_event(3, tool=LONG)]
    )
    rows = {r.seq: r for r in fetch_events(engine)}
    first, second = rows[seqs[0]].request_ref, rows[seqs[1]].request_ref
    assert first is not None and second is not None
    assert len(first) == 256 and len(second) == 256 and first != second  # distinct inputs stay distinct
    assert first.startswith("rrrr") and first[-13] == "#"
    assert len(rows[seqs[2]].tool) == 256 and "tool: 5000 characters cut to 256" in rows[seqs[2]].error
    assert first_bad(engine) is None


async def test_arguments_nested_deeper_than_the_limit_are_stored_with_a_marker(engine: Engine) -> None:
    deep: Any = "bottom"
    for _ in range(5000):
        deep = {"a": [deep]}
    seqs = await write(engine, [make_event(1, arguments=deep, args_hash="h"), make_event(2)])
    row = stored(engine)["call-1"]
    assert TOO_DEEP in row.arguments and f"nesting deeper than {MAX_DEPTH} levels replaced" in row.error
    assert sorted(seqs) == [1, 2] and first_bad(engine) is None


async def test_a_batch_the_database_refuses_one_event_of_commits_every_other_event(engine: Engine) -> None:
    """Defence in depth behind the prepare step: the failed batch is split until the bad event is alone."""
    refuse_identity(engine, "attacker")
    writer = AuditWriter(engine, batch_max=512)
    await writer.start()
    try:
        events = [make_event(n, identity="attacker" if n % 10 == 3 else f"victim-{n % 2}") for n in range(100)]
        results = await asyncio.gather(*(writer.record(e) for e in events), return_exceptions=True)
    finally:
        await writer.stop()
    for event, result in zip(events, results, strict=True):
        if event.identity == "attacker":
            assert isinstance(result, AuditError)
            assert "SQL" not in str(result) and "victim" not in str(result) and "parameters" not in str(result)
        else:
            assert isinstance(result, int), result
    assert sorted(r.identity for r in fetch_events(engine, limit=1000)).count("attacker") == 0
    assert len(list(fetch_events(engine, limit=1000))) == 90
    assert first_bad(engine) is None


async def test_denied_calls_keep_a_hash_and_a_preview_and_the_database_stays_small(engine: Engine) -> None:
    big = {"text": "x" * 1_000_000, "note": "start"}
    denied = [make_event(n, effect="deny", arguments=big) for n in range(60)]
    allowed = make_event(100, arguments=big)
    await write(engine, [*denied, allowed], limits=StorageLimits(args_max_bytes=65536, denied_args_preview_bytes=1024))
    with engine.connect() as conn:
        total = conn.execute(text("SELECT sum(length(arguments)) FROM audit_events")).scalar_one()
    assert total < 60 * 1400 + 70_000, f"{total} bytes of arguments stored for 61 calls of 1 MB"
    row = stored(engine)["call-0"]
    document = json.loads(row.arguments)[TRUNCATED_KEY]
    assert document["bytes"] > 1_000_000 and len(document["sha256"]) == 64
    assert document["preview"].startswith('{"note":"start","text":"xxx') and len(document["preview"]) <= 1024
    assert row.args_hash == make_event(0, arguments=big).args_hash  # the full arguments' hash is kept
    capped = json.loads(stored(engine)["call-100"].arguments)[TRUNCATED_KEY]
    assert 60_000 < len(capped["preview"]) <= 65536
    assert verify(engine, None).ok


async def test_small_denied_arguments_are_stored_in_full(engine: Engine) -> None:
    await write(engine, [make_event(1, effect="deny", arguments={"path": "/etc/shadow"})])
    assert json.loads(stored(engine)["call-1"].arguments) == {"path": "/etc/shadow"}


def refuse_identity(engine: Engine, identity: str) -> None:
    """A trigger refusing inserts of one identity's events (stands for any row the database rejects)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    f"CREATE TRIGGER refuse_one BEFORE INSERT ON audit_events WHEN NEW.identity = '{identity}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.identity = '{identity}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_one()"
                )
            )


# ---- through the real gateway ---------------------------------------------------------------


@pytest.fixture
def gateway(tmp_path: Path, notes: NotesUpstream, database_url: str) -> Any:
    with run_gateway(
        tmp_path,
        fixture_policy_dir(tmp_path),
        upstreams_yaml(notes.url),
        ["reader-agent", "writer-agent", "alice"],
        database_url=database_url,
    ) as gw:
        yield gw


def raw_call(
    gw: Gateway, identity: str, name: str, arguments_json: str, request_id_json: str, n: int
) -> httpx.Response:
    """A tools/call as raw JSON text (2026-07-28): lone surrogates and NUL are valid JSON escapes."""
    meta = (
        '{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},'
        f'"warden/request_id":{request_id_json}}}'
    )
    body = (
        f'{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"{name}",'
        f'"arguments":{arguments_json},"_meta":{meta}}}}}'
    )
    headers = {
        "Authorization": f"Bearer {gw.keys[identity]}",
        "MCP-Protocol-Version": "2026-07-28",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    return httpx.post(gw.mcp_url, content=body.encode(), headers=headers, timeout=60)


BAD_REQUEST_IDS = ['"\\ud800"', '"a\\u0000b"', json.dumps("x" * 300), '"\\udfff\\u0000' + "y" * 400 + '"']
BAD_ARGUMENTS = ['{"\\ud800":"v"}', '{"k":"\\udc00\\u0000"}', "{}"]


async def test_an_attacker_with_bad_request_ids_never_breaks_a_victims_calls(gateway: Gateway) -> None:
    async def attacker() -> list[httpx.Response]:
        loop = asyncio.get_running_loop()
        calls = [
            loop.run_in_executor(None, raw_call, gateway, "alice", tool, args, ref, n)
            for n, (ref, args, tool) in enumerate(
                (ref, args, tool)
                for ref in BAD_REQUEST_IDS
                for args in BAD_ARGUMENTS
                for tool in ("time__get_current_time", "notes__delete_note")
            )
        ]
        return list(await asyncio.gather(*calls))

    async def victim() -> list[Any]:
        async with connect(gateway, "reader-agent") as client:
            return list(
                await asyncio.gather(
                    *(client.call_tool("time__get_current_time", {"timezone": "UTC"}) for _ in range(40))
                )
            )

    answers, results = await asyncio.gather(attacker(), victim())
    assert all(not r.is_error for r in results), [text_of(r) for r in results if r.is_error]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "audit" not in answer.text.lower() or "denied" in answer.text.lower()
    from tests.gateway.harness import rows

    victim_rows = rows(gateway, "SELECT phase, outcome FROM audit_events WHERE identity = 'reader-agent'")
    assert sum(1 for r in victim_rows if r["phase"] == "outcome" and r["outcome"] == "ok") == 40
    assert sum(1 for r in victim_rows if r["phase"] == "decision" and r["outcome"] is None) == 40
    attacker_rows = rows(gateway, "SELECT request_ref, error FROM audit_events WHERE identity = 'alice'")
    assert len(attacker_rows) == len(answers)  # every attacker call is on record too
    for row in attacker_rows:
        assert "\x00" not in (row["request_ref"] or "") and len(row["request_ref"] or "") <= 256


async def test_fail_closed_denials_never_show_another_identitys_data(gateway: Gateway) -> None:
    """The database refuses every insert: each agent is told the audit log failed, in its own terms,
    never the database's error text (which listed every row of the failed batch)."""
    from gateway.db import create_db_engine
    from tests.gateway.audit.events import allow_inserts, refuse_inserts

    engine = create_db_engine(gateway.database_url)
    refuse_inserts(engine)
    try:
        async with connect(gateway, "writer-agent") as victim, connect(gateway, "reader-agent") as attacker:
            victim_calls = [
                victim.call_tool("notes__add_note", {"title": f"victim-title-{n}", "body": f"victim-private-{n}"})
                for n in range(15)
            ]
            attacker_calls = [attacker.call_tool("time__get_current_time", {"timezone": "UTC"}) for _ in range(15)]
            results = await asyncio.gather(*victim_calls, *attacker_calls)
    finally:
        allow_inserts(engine)
        engine.dispose()
    seen_by_attacker = "\n".join(text_of(r) for r in results[15:])
    assert all(r.is_error for r in results[15:])
    assert "audit" in seen_by_attacker
    for leak in ("writer-agent", "victim-", "add_note", "SQL", "INSERT", "parameters", "disk on fire", "audit_events"):
        assert leak not in seen_by_attacker, leak
    assert "disk on fire" in gateway.log() and "victim-private" not in gateway.log()  # details: operator log only


async def test_denied_calls_with_large_arguments_keep_the_database_small(gateway: Gateway) -> None:
    """Issue 12: 60 default-denied calls with a ~1 MB argument grew the database by 61 MiB."""
    from tests.gateway.harness import rows

    async with connect(gateway, "alice") as attacker:  # alice has no grants: default deny
        for n in range(60):
            result = await attacker.call_tool("time__get_current_time", {"timezone": f"{n}" + "x" * 900_000})
            # an ungranted tool answers like an unknown one (issue 12 item 9); the audit row says default-deny
            assert result.is_error and "unknown tool" in text_of(result)
    (stored_row,) = rows(
        gateway,
        "SELECT sum(length(arguments)) AS args, sum(length(error)) AS err, count(*) AS n FROM audit_events "
        "WHERE identity = 'alice'",
    )
    assert stored_row["n"] == 60
    assert stored_row["args"] < 60 * 1400, stored_row  # ~1 KiB preview + hash per call, not 54 MB
    (one,) = rows(gateway, "SELECT arguments, args_hash FROM audit_events WHERE identity = 'alice' LIMIT 1")
    document = json.loads(one["arguments"])[TRUNCATED_KEY]
    assert document["bytes"] > 900_000 and len(one["args_hash"]) == 64


async def test_redacted_values_echoed_by_a_schema_error_and_secrets_in_request_refs_are_not_stored(
    gateway: Gateway,
) -> None:
    """notes__add_note's `secret` is redacted by policy; a list there fails schema validation, whose
    message echoes the value. The request ref carries a bearer token and a provider key."""
    from tests.gateway.harness import rows

    secret, key = "policy-secret-4711", "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz"
    async with connect(gateway, "writer-agent") as client:
        result = await client.call_tool("notes__add_note", {"title": "t", "body": "b", "secret": [secret]})
    assert result.is_error and "invalid arguments" in text_of(result)
    ref = json.dumps(f"Bearer abcdefghijklmnopqrstuvwxyz0123 {key}")
    answer = raw_call(gateway, "writer-agent", "time__get_current_time", '{"timezone":"UTC"}', ref, 7)
    assert answer.status_code == 200
    dump = json.dumps(rows(gateway, "SELECT * FROM audit_events"), default=str)
    assert "invalid_arguments" in dump and "UTC" in dump
    for leak in (secret, key, "abcdefghijklmnopqrstuvwxyz0123"):
        assert leak not in dump, leak
