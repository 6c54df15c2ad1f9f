"""The gateway end to end: real gateway process, real upstreams (PyPI `mcp-server-time` over
stdio, an SDK server over Streamable HTTP), real `mcp` clients per identity, real SQLite."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from gateway.db import create_db_engine
from gateway.identities import IdentityStore
from tests.gateway.approvals.harness import eventually
from tests.gateway.harness import (
    Gateway,
    NotesUpstream,
    connect,
    fixture_policy_dir,
    metric,
    rows,
    run_gateway,
    text_of,
    upstreams_yaml,
    wait_until,
)

IDENTITIES = ["reader-agent", "writer-agent", "alice"]

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    policy_dir = fixture_policy_dir(tmp)
    with run_gateway(tmp, policy_dir, upstreams_yaml(notes.url), IDENTITIES, WARDEN_APPROVAL_HOLD_S="0") as gateway:
        yield gateway


def audit_rows(gw: Gateway, where: str = "1=1", **params: object) -> list[dict[str, object]]:
    return rows(gw, f"SELECT * FROM audit_events WHERE {where} ORDER BY seq", **params)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_identities_see_only_their_granted_tools(gw: Gateway, mode: str) -> None:
    async with connect(gw, "reader-agent", mode) as client:
        reader = sorted(t.name for t in (await client.list_tools()).tools)
        if mode == "auto":
            assert client.protocol_version == "2026-07-28"
        else:
            assert client.protocol_version.startswith("2025")
    async with connect(gw, "writer-agent", mode) as client:
        writer = sorted(t.name for t in (await client.list_tools()).tools)
    assert reader == ["notes__list_notes", "time__get_current_time"]
    assert {"time__convert_time", "notes__add_note", "notes__delete_note", "notes__echo"} <= set(writer)
    async with connect(gw, "alice", mode) as client:
        assert (await client.list_tools()).tools == []


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_allowed_call_reaches_upstream_and_is_audited(gw: Gateway, mode: str) -> None:
    async with connect(gw, "reader-agent", mode) as client:
        result = await client.call_tool("time__get_current_time", {"timezone": "Europe/Paris"})
    assert not result.is_error, text_of(result)
    assert json.loads(text_of(result))["timezone"] == "Europe/Paris"
    rows = audit_rows(gw, "identity = 'reader-agent' AND tool = 'get_current_time'")
    phases = [(r["phase"], r["effect"], r["outcome"]) for r in rows[-2:]]
    assert phases == [("decision", "allow", None), ("outcome", "allow", "ok")]
    assert rows[-1]["server"] == "time" and rows[-1]["latency_upstream_ms"] is not None


async def test_denied_call_names_rule_and_is_not_forwarded(gw: Gateway) -> None:
    async with connect(gw, "writer-agent") as client:
        result = await client.call_tool("notes__delete_note", {"id": 1})
    assert result.is_error
    assert "deny-delete" in text_of(result) and "never deleted" in text_of(result)
    row = audit_rows(gw, "tool = 'delete_note'")[-1]
    assert (row["effect"], row["outcome"], json.loads(str(row["rule_ids"]))) == ("deny", "denied", ["deny-delete"])


async def test_an_ungranted_tool_answers_exactly_like_an_unknown_one(gw: Gateway) -> None:
    """An identity cannot learn which tools exist outside its tools/list: same text, same shape."""
    args = {"title": "t", "body": "b"}
    async with connect(gw, "reader-agent") as client:
        ungranted = await client.call_tool("notes__add_note", args)
        denied_by_rule_elsewhere = await client.call_tool("notes__delete_note", {"id": 1})  # a deny rule exists
        bad_args = await client.call_tool("notes__add_note", {"title": 5})  # schema checks must not run first
        unknown = await client.call_tool("notes__no_such_tool", args)
        no_server = await client.call_tool("nothing__here", args)

    def shape(result: object, name: str) -> tuple[object, str]:
        return getattr(result, "is_error", None), text_of(result).replace(name, "NAME")

    answers = {
        shape(ungranted, "notes__add_note"),
        shape(denied_by_rule_elsewhere, "notes__delete_note"),
        shape(bad_args, "notes__add_note"),
        shape(unknown, "notes__no_such_tool"),
        shape(no_server, "nothing__here"),
    }
    assert answers == {(True, "unknown tool: 'NAME'. Call tools/list to see the tools you may call.")}
    assert "default-deny" not in text_of(ungranted) and "deny-delete" not in text_of(denied_by_rule_elsewhere)
    row = audit_rows(gw, "identity = 'reader-agent' AND tool = 'add_note'")[-1]
    assert (row["effect"], json.loads(str(row["rule_ids"]))) == ("deny", ["default-deny"])  # operators see why
    unknown_row = audit_rows(gw, "identity = 'reader-agent' AND tool = 'no_such_tool'")[-1]
    assert (unknown_row["outcome"], json.loads(str(unknown_row["rule_ids"]))) == ("denied", ["unknown-tool"])


async def test_argument_condition_decides_per_call(gw: Gateway) -> None:
    args = {"source_timezone": "UTC", "time": "12:00"}
    async with connect(gw, "writer-agent") as client:
        blocked = await client.call_tool("time__convert_time", {**args, "target_timezone": "Antarctica/Troll"})
        allowed = await client.call_tool("time__convert_time", {**args, "target_timezone": "Asia/Tokyo"})
    assert blocked.is_error and "deny-antarctica" in text_of(blocked)
    assert not allowed.is_error, text_of(allowed)


async def test_rate_limit_per_identity_and_tool(gw: Gateway) -> None:
    async with connect(gw, "writer-agent") as client:
        results = [await client.call_tool("notes__echo", {"text": f"n{i}"}) for i in range(4)]
    assert [r.is_error for r in results] == [False, False, False, True]
    assert "rl-echo" in text_of(results[-1])


async def test_approval_required_creates_pending_record(gw: Gateway) -> None:
    async with connect(gw, "writer-agent") as client:
        result = await client.call_tool(
            "notes__add_note", {"title": "publish launch", "body": "b", "secret": "hunter2"}
        )
    assert result.is_error
    message = text_of(result)
    assert message.startswith("pending approval ") and "approve-publish" in message
    approval_id = message.split()[2].rstrip(":")
    engine = create_db_engine(gw.database_url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM approvals WHERE id = :id"), {"id": approval_id}).one()._mapping
    engine.dispose()
    assert row["state"] == "pending" and row["identity"] == "writer-agent" and row["tool"] == "add_note"
    assert "hunter2" not in str(row["arguments"])
    audit = audit_rows(gw, "approval_id = :id", id=approval_id)
    assert [(r["phase"], r["effect"], r["outcome"]) for r in audit] == [
        ("decision", "approve", None),
        ("outcome", "approve", "approval_required"),
    ]
    assert "hunter2" not in str(audit[0]["arguments"])


async def test_arguments_violating_input_schema_are_rejected_before_forwarding(gw: Gateway) -> None:
    async with connect(gw, "reader-agent") as client:
        result = await client.call_tool("time__get_current_time", {"timezone": 5})
        missing = await client.call_tool("time__get_current_time", {})
    assert result.is_error and "invalid arguments" in text_of(result) and "timezone" in text_of(result)
    assert missing.is_error and "required" in text_of(missing)
    row = audit_rows(gw, "outcome = 'invalid_arguments'")[-1]
    assert row["phase"] == "decision"


async def test_missing_bad_and_revoked_keys_get_401(gw: Gateway) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"MCP-Protocol-Version": "2026-07-28", "Accept": "application/json, text/event-stream"}
    http = httpx.AsyncClient()
    missing = await http.post(gw.mcp_url, json=body, headers=headers)
    bad = await http.post(gw.mcp_url, json=body, headers={**headers, "Authorization": "Bearer wdn_nope_nope"})
    assert missing.status_code == 401 and "no API key" in missing.json()["message"]
    assert bad.status_code == 401 and "not valid" in bad.json()["message"]

    engine = create_db_engine(gw.database_url)
    store = IdentityStore(engine)
    _, key = store.create("short-lived")
    async with connect(gw, None, key=key) as client:
        assert (await client.list_tools()).tools == []  # a valid key with no grants sees nothing
    store.revoke("short-lived")  # by another process: refused once the gateway's cache entry expires
    engine.dispose()

    async def refused() -> httpx.Response | None:
        answer = await http.post(gw.mcp_url, json=body, headers={**headers, "Authorization": f"Bearer {key}"})
        return answer if answer.status_code == 401 else None

    revoked = await eventually(refused, 15, "the revoked key to be refused (auth_cache_ttl_s)")
    assert "revoked" in revoked.json()["message"]
    await http.aclose()


async def test_upstream_never_sees_client_credentials(gw: Gateway, notes: NotesUpstream) -> None:
    async with connect(gw, "writer-agent") as client:
        result = await client.call_tool("notes__list_notes", {})
    assert not result.is_error
    seen = notes.seen_headers()
    assert seen, "the HTTP upstream received no request"
    agent_key = gw.keys["writer-agent"]
    for headers in seen:
        assert agent_key not in json.dumps(headers)
        assert "authorization" not in headers
        assert headers.get("x-upstream-token") == "upstream-secret-123"


def test_bad_jsonrpc_input_gets_clear_errors_not_500(gw: Gateway) -> None:
    auth = {
        "Authorization": f"Bearer {gw.keys['reader-agent']}",
        "MCP-Protocol-Version": "2026-07-28",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    malformed = httpx.post(gw.mcp_url, content=b"{not json", headers=auth)
    assert malformed.status_code in (400, 200) and malformed.json()["error"]["code"] == -32700
    envelope = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    unknown = httpx.post(
        gw.mcp_url,
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/frobnicate", "params": {"_meta": envelope}},
        headers={**auth, "Mcp-Method": "tools/frobnicate"},
    )
    assert unknown.status_code < 500 and unknown.json()["error"]["code"] == -32601
    no_envelope = httpx.post(gw.mcp_url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=auth)
    assert no_envelope.status_code == 400 and "_meta" in no_envelope.json()["error"]["message"]
    huge = httpx.post(gw.mcp_url, content=b"x" * 2_000_000, headers=auth)
    assert huge.status_code == 413


def test_broken_policy_edit_keeps_last_good_policy(gw: Gateway) -> None:
    async def calls() -> tuple[bool, str]:
        async with connect(gw, "writer-agent") as client:
            result = await client.call_tool("notes__delete_note", {"id": 7})
        return result.is_error, text_of(result)

    import anyio

    def reloads(result: str) -> float:
        return metric(gw, f'warden_policy_reloads_total{{result="{result}"}}')

    policy_file = gw.policy_dir / "policy.yaml"
    good = policy_file.read_text()
    before = reloads("error")
    policy_file.write_text(good.replace("effect: deny", "effect: maybe", 1))
    wait_until(lambda: reloads("error") > before, 15, "the broken policy edit to be rejected")
    assert "policy.yaml" in gw.log()
    denied, message = anyio.run(calls)
    assert denied and "deny-delete" in message  # old policy still live
    ok_before = reloads("ok")
    policy_file.write_text(good.replace("notes are never deleted by agents", "no deleting, please"))
    wait_until(lambda: reloads("ok") > ok_before, 15, "the fixed policy to be applied")
    denied, message = anyio.run(calls)
    assert denied and "no deleting, please" in message
    policy_file.write_text(good)
    wait_until(lambda: reloads("ok") > ok_before + 1, 15, "the original policy to be restored")


def test_health_ready_and_metrics(gw: Gateway) -> None:
    assert httpx.get(f"{gw.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gw.url}/readyz")
    assert ready.status_code == 200
    assert {name: u["state"] for name, u in ready.json()["upstreams"].items()} == {"time": "ready", "notes": "ready"}
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert "warden_decisions_total" in metrics and "warden_call_seconds_bucket" in metrics


@pytest.fixture
def bridge() -> Path:
    path = Path(os.environ.get("WARDEN_TEST_BRIDGE", Path(__file__).parents[2] / ".venv-bridge/bin/mcp-proxy"))
    assert path.exists(), f"{path} missing: `make setup` installs mcp-proxy into .venv-bridge"
    return path


async def test_stdio_only_client_works_through_a_standard_bridge(gw: Gateway, bridge: Path) -> None:
    """A stdio MCP client reaches the gateway through `mcp-proxy` (PyPI), the README's recipe."""
    from mcp.client.client import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=str(bridge),
        args=["--transport", "streamablehttp", gw.mcp_url],
        env={"API_ACCESS_TOKEN": gw.keys["reader-agent"]},
    )
    async with Client(params, mode="legacy", cache=None) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
    assert names == ["notes__list_notes", "time__get_current_time"]
    assert not result.is_error and "UTC" in text_of(result)
