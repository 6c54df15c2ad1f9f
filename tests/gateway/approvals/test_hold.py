"""Held calls end to end: the agent's call waits (up to WARDEN_APPROVAL_HOLD_S) while a person
decides over the REST API, the `warden approvals` CLI or a URL elicitation. A real gateway
process, real `mcp` clients, the real notes upstream and a real SQLite database."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.gateway.approvals.harness import (
    IDENTITIES,
    StartGateway,
    approval_row,
    audit_of,
    auth,
    call,
    decide,
    eventually,
    notes_titled,
    pending_for,
)
from tests.gateway.harness import REPO, Gateway, free_port, rows, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def held(approvals_gateway: StartGateway) -> Iterator[Gateway]:
    """Calls wait up to 20 s for the decision. Its webhook receiver is down: that must not matter."""
    dead_hook = f"http://127.0.0.1:{free_port()}/nobody-listens"
    with approvals_gateway(IDENTITIES, WARDEN_APPROVAL_HOLD_S="20", WARDEN_APPROVAL_WEBHOOK_URL=dead_hook) as gw:
        yield gw


@asynccontextmanager
async def held_call(gw: Gateway, who: str, tool: str, arguments: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Start a tools/call in the background; the dict gets its result under "result" on exit."""
    box: dict[str, Any] = {}

    async def run() -> None:
        box["result"] = await call(gw, who, tool, arguments)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        yield box


def warden(gw: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": gw.database_url,
        "WARDEN_POLICY_DIR": str(gw.policy_dir),
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "warden", "approvals", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_approved_while_held_the_agent_gets_the_upstream_result(held: Gateway) -> None:
    args = {"title": "publish held-approve", "body": "b", "secret": "hunter2"}
    async with held_call(held, "writer-agent", "notes__add_note", args) as box:
        approval = await pending_for(held, "publish held-approve")
        assert approval["identity"] == "writer-agent" and approval["rule_ids"] == ["approve-publish"]
        assert approval["arguments"]["secret"] != "hunter2"  # approvers see redacted arguments
        r = await decide(held, approval["id"], "approve", reason="fine to publish")
        assert r.status_code == 200 and r.json()["state"] == "approved"
    result = box["result"]
    assert not result.is_error, text_of(result)
    assert json.loads(text_of(result))["title"] == "publish held-approve"
    row = approval_row(held, approval["id"])
    assert (row["state"], row["decided_by"], row["decided_reason"]) == ("consumed", "alice", "fine to publish")
    assert audit_of(held, approval["id"]) == [
        ("tools/call", "decision", "writer-agent", "approve", None),
        ("approvals/decide", "decision", "alice", "allow", None),
        ("tools/call", "outcome", "writer-agent", "approve", "ok"),
    ]
    linked = rows(held, "SELECT DISTINCT call_id FROM audit_events WHERE approval_id = :id", id=approval["id"])
    assert [r["call_id"] for r in linked] == [approval["call_id"]]  # the decision is linked to the call's events
    assert await notes_titled(held, "publish held-approve") == 1
    assert "approval webhook approval.pending to" in held.log()  # the failed delivery is logged, the call ran


async def test_denied_while_held_is_a_tool_error_with_the_reason(held: Gateway) -> None:
    async with held_call(held, "writer-agent", "notes__add_note", {"title": "publish held-deny", "body": "b"}) as box:
        approval = await pending_for(held, "publish held-deny")
        r = await decide(held, approval["id"], "deny", reason="not before the launch")
        assert r.status_code == 200 and r.json()["state"] == "denied"
    result = box["result"]
    assert result.is_error
    assert approval["id"] in text_of(result) and "not before the launch" in text_of(result)
    assert "alice" in text_of(result)
    assert audit_of(held, approval["id"])[1:] == [
        ("approvals/decide", "decision", "alice", "deny", None),
        ("tools/call", "outcome", "writer-agent", "deny", "denied"),
    ]
    assert await notes_titled(held, "publish held-deny") == 0


async def test_cli_lists_shows_and_approves_a_held_call(held: Gateway) -> None:
    async with held_call(held, "writer-agent", "notes__add_note", {"title": "publish via-cli", "body": "b"}) as box:
        approval = await pending_for(held, "publish via-cli")
        listed = await anyio.to_thread.run_sync(warden, held, "list")
        assert listed.returncode == 0 and approval["id"] in listed.stdout, listed.stdout + listed.stderr
        shown = await anyio.to_thread.run_sync(warden, held, "show", approval["id"])
        assert shown.returncode == 0 and json.loads(shown.stdout)["arguments"]["title"] == "publish via-cli"
        refused = await anyio.to_thread.run_sync(warden, held, "approve", approval["id"], "--as", "bob", "-r", "x")
        assert refused.returncode == 1 and "needs one of the roles" in refused.stderr
        done = await anyio.to_thread.run_sync(
            warden, held, "approve", approval["id"], "--as", "alice", "--reason", "approved from the terminal"
        )
        assert done.returncode == 0 and "approved by alice" in done.stdout, done.stderr
    result = box["result"]
    assert not result.is_error, text_of(result)  # the gateway saw the CLI's decision in the database
    assert ("approvals/decide", "decision", "alice", "allow", None) in audit_of(held, approval["id"])
    again = await anyio.to_thread.run_sync(warden, held, "deny", approval["id"], "--as", "alice", "-r", "late")
    assert again.returncode == 1 and "already" in again.stderr


async def test_cli_watch_shows_new_pending_approvals(held: Gateway) -> None:
    env = {**os.environ, "WARDEN_DATABASE_URL": held.database_url, "COLUMNS": "250", "PYTHONUNBUFFERED": "1"}
    watch = subprocess.Popen(  # noqa: ASYNC220 (started once; read on a thread, stopped in finally)
        [sys.executable, "-m", "warden", "approvals", "watch", "--interval", "0.2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert watch.stdout is not None
    stdout = watch.stdout

    def read_lines() -> None:
        for line in iter(stdout.readline, ""):
            lines.put(line)

    reader = threading.Thread(target=read_lines)
    reader.start()
    try:
        async with held_call(held, "writer-agent", "notes__add_note", {"title": "publish watched", "body": "b"}):
            approval = await pending_for(held, "publish watched")

            async def seen() -> bool | None:
                try:
                    return True if approval["id"] in lines.get_nowait() else None
                except queue.Empty:
                    return None

            await eventually(seen, 20, "watch to show the new approval")
            assert (await decide(held, approval["id"], "deny", reason="only watching")).status_code == 200
    finally:
        watch.terminate()
        watch.wait(10)
        reader.join(10)
        stdout.close()  # the pipe is ours to close (an unclosed one is a ResourceWarning, and warnings fail)


async def test_requester_cannot_approve_its_own_call(held: Gateway) -> None:
    async with held_call(held, "lead-agent", "notes__add_note", {"title": "publish self", "body": "b"}) as box:
        approval = await pending_for(held, "publish self")
        own = await decide(held, approval["id"], "approve", who="lead-agent", reason="trust me")
        assert own.status_code == 403 and "own" in own.json()["detail"]
        assert approval_row(held, approval["id"])["state"] == "pending"
        cli = await anyio.to_thread.run_sync(warden, held, "approve", approval["id"], "--as", "lead-agent", "-r", "me")
        assert cli.returncode == 1 and "own" in cli.stderr
        assert (await decide(held, approval["id"], "deny", reason="no self-service")).status_code == 200
    assert box["result"].is_error and "no self-service" in text_of(box["result"])


async def test_url_elicitation_points_the_person_to_the_approval(held: Gateway) -> None:
    """A 2026-07-28 client that takes URL elicitations gets the approval link in an
    input-required result; once the person approves there, the client's retry runs."""
    links: list[str] = []

    async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        links.append(params.url)
        async with httpx.AsyncClient() as http:  # the person opens the link ...
            seen = await http.get(params.url, headers=auth(held, "alice"))
        assert seen.status_code == 200 and seen.json()["state"] == "pending"
        assert seen.json()["arguments"]["title"] == "publish elicited"
        r = await decide(held, seen.json()["id"], "approve", reason="approved from the link")  # ... and approves
        assert r.status_code == 200
        return types.ElicitResult(action="accept")

    async with (
        httpx2.AsyncClient(headers=auth(held, "writer-agent"), timeout=30) as http,
        Client(
            streamable_http_client(held.mcp_url, http_client=http),
            mode="auto",
            cache=None,
            elicitation_callback=on_elicit,
        ) as client,
    ):
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("notes__add_note", {"title": "publish elicited", "body": "b"})
    assert not result.is_error, text_of(result)
    assert json.loads(text_of(result))["title"] == "publish elicited"
    assert len(links) == 1 and links[0].startswith(f"{held.url}/approvals/apr_")
    assert approval_row(held, links[0].rsplit("/", 1)[1])["state"] == "consumed"
