"""Approvals end to end: a real gateway process, real `mcp` clients, the real notes upstream,
a real SQLite database, the REST API and the `warden approvals` CLI, and a real HTTP
receiver for the webhook. Waiting is on conditions with timeouts, never on sleeps."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
import uvicorn
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.db import create_db_engine
from gateway.webhook import verify
from tests.gateway.harness import (
    REPO,
    Gateway,
    NotesUpstream,
    connect,
    free_port,
    run_gateway,
    run_notes_upstream,
    text_of,
    upstreams_yaml,
    wait_until,
)

pytestmark = pytest.mark.anyio

IDENTITIES = ["writer-agent", "lead-agent", "alice", "bob"]
POLICY = """
identities:
  writer-agent: {roles: [writer]}
  lead-agent: {roles: [writer, approver]}
  alice: {roles: [approver]}
  bob: {roles: [auditor]}
roles:
  writer: {grants: ["notes__*", "time__*"]}
  approver: {}
  auditor: {}
rules:
  - id: approve-publish
    effect: approve
    tools: [notes__add_note]
    when: 'args.title.startsWith("publish")'
    reason: publishing needs a human
    approvers: [approver]
  - id: approve-echo-for-a-while
    effect: approve
    tools: [notes__echo]
    reason: echoes are reviewed once, then allowed for ten minutes
    approvers: [approver]
    scope: {match: tool, ttl_s: 600}
redact:
  - tools: ["notes__add_note"]
    fields: ["secret"]
"""
WEBHOOK_SECRET = "whsec-test-0123456789"
FAST = {"WARDEN_APPROVAL_POLL_S": "0.1", "WARDEN_APPROVAL_TTL_S": "120"}

T = TypeVar("T")


# ---- fixtures -----------------------------------------------------------------------------


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    deliveries: queue.Queue[Delivery]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on a loopback port that keeps every webhook delivery."""
    deliveries: queue.Queue[Delivery] = queue.Queue()

    async def hook(request: Request) -> Response:
        deliveries.put(Delivery({k.lower(): v for k, v in request.headers.items()}, await request.body()))
        return Response(status_code=204)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 15, "webhook receiver to start")
    try:
        yield Receiver(f"http://127.0.0.1:{port}/hook", deliveries)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotesUpstream]:
    with run_notes_upstream(tmp_path_factory.mktemp("notes")) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("approval-policy")
    (directory / "policy.yaml").write_text(POLICY)
    return directory


def _gateway(
    factory: pytest.TempPathFactory, policy_dir: Path, notes: NotesUpstream, identities: list[str], **env: str
) -> AbstractContextManager[Gateway]:
    return run_gateway(factory.mktemp("gw"), policy_dir, upstreams_yaml(notes.url), identities, **{**FAST, **env})


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory, policy_dir: Path, notes: NotesUpstream) -> Iterator[Gateway]:
    """Calls wait up to 20 s for the decision. Its webhook receiver is down: that must not matter."""
    dead_hook = f"http://127.0.0.1:{free_port()}/nobody-listens"
    with _gateway(
        tmp_path_factory,
        policy_dir,
        notes,
        IDENTITIES,
        WARDEN_APPROVAL_HOLD_S="20",
        WARDEN_APPROVAL_WEBHOOK_URL=dead_hook,
    ) as gw:
        yield gw


@pytest.fixture(scope="module")
def quick(
    tmp_path_factory: pytest.TempPathFactory, policy_dir: Path, notes: NotesUpstream, receiver: Receiver
) -> Iterator[Gateway]:
    """Calls answer "pending approval" at once; new approvals are sent to the webhook receiver."""
    with _gateway(
        tmp_path_factory,
        policy_dir,
        notes,
        IDENTITIES,
        WARDEN_APPROVAL_HOLD_S="0",
        WARDEN_APPROVAL_WEBHOOK_URL=receiver.url,
        WARDEN_APPROVAL_WEBHOOK_SECRET=WEBHOOK_SECRET,
    ) as gw:
        yield gw


# ---- helpers ------------------------------------------------------------------------------


def auth(gw: Gateway, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.keys[who]}"}


async def eventually(probe: Callable[[], Awaitable[T | None]], within_s: float, what: str) -> T:
    """Re-check `probe` until it returns a value; fail after `within_s` seconds."""
    try:
        with anyio.fail_after(within_s):
            while True:
                value = await probe()
                if value is not None:
                    return value
                await anyio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {within_s}s waiting for {what}") from None


async def pending_for(gw: Gateway, title: str, within_s: float = 15) -> dict[str, Any]:
    """The pending approval (as alice sees it over REST) of the add_note call with this title."""

    async def probe() -> dict[str, Any] | None:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{gw.url}/approvals", headers=auth(gw, "alice"))
        r.raise_for_status()
        found = [a for a in r.json() if a["arguments"].get("title") == title]
        return found[0] if found else None

    return await eventually(probe, within_s, f"a pending approval for {title!r}")


async def decide(gw: Gateway, approval_id: str, verdict: str, who: str = "alice", reason: str = "ok") -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{gw.url}/approvals/{approval_id}/{verdict}", json={"reason": reason}, headers=auth(gw, who)
        )


async def call(gw: Gateway, who: str, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
    async with connect(gw, who) as client:
        return await client.call_tool(tool, arguments)


def pending_id(result: types.CallToolResult) -> str:
    message = text_of(result)
    assert result.is_error and message.startswith("pending approval "), message
    return message.split()[2].rstrip(":")


def rows(gw: Gateway, sql: str, **params: object) -> list[dict[str, Any]]:
    engine = create_db_engine(gw.database_url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def approval_row(gw: Gateway, approval_id: str) -> dict[str, Any]:
    return rows(gw, "SELECT * FROM approvals WHERE id = :id", id=approval_id)[0]


def audit_of(gw: Gateway, approval_id: str) -> list[tuple[Any, ...]]:
    found = rows(gw, "SELECT * FROM audit_events WHERE approval_id = :id ORDER BY seq", id=approval_id)
    return [(r["method"], r["phase"], r["identity"], r["effect"], r["outcome"]) for r in found]


async def notes_titled(gw: Gateway, title: str) -> int:
    async with connect(gw, "writer-agent") as client:
        listed = await client.call_tool("notes__list_notes", {})
    return sum(1 for note in (listed.structured_content or {}).get("result", []) if note["title"] == title)


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


# ---- held calls ---------------------------------------------------------------------------


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
    reader = threading.Thread(target=lambda: [lines.put(line) for line in iter(watch.stdout.readline, "")])  # type: ignore[union-attr]
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

    async def on_elicit(ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
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


# ---- retries ------------------------------------------------------------------------------


async def test_a_retry_after_approval_runs_exactly_once(quick: Gateway) -> None:
    args = {"title": "publish retry-once", "body": "b"}
    first = pending_id(await call(quick, "writer-agent", "notes__add_note", args))
    assert (await decide(quick, first, "approve", reason="go")).status_code == 200
    retried = await call(quick, "writer-agent", "notes__add_note", args)
    assert not retried.is_error, text_of(retried)
    again = await call(quick, "writer-agent", "notes__add_note", args)
    assert pending_id(again) != first  # the same call again needs a new approval
    assert approval_row(quick, first)["state"] == "consumed"
    assert await notes_titled(quick, "publish retry-once") == 1


async def test_concurrent_retries_of_one_approved_call_run_once(quick: Gateway) -> None:
    args = {"title": "publish racing", "body": "b"}
    approval_id = pending_id(await call(quick, "writer-agent", "notes__add_note", args))
    assert (await decide(quick, approval_id, "approve")).status_code == 200
    results: list[types.CallToolResult] = []

    async def retry() -> None:
        results.append(await call(quick, "writer-agent", "notes__add_note", args))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(retry)
    assert sorted(r.is_error for r in results) == [False, True, True, True]
    assert await notes_titled(quick, "publish racing") == 1


async def test_a_retry_with_changed_arguments_is_not_covered(quick: Gateway) -> None:
    args = {"title": "publish changed", "body": "approved text"}
    approval_id = pending_id(await call(quick, "writer-agent", "notes__add_note", args))
    assert (await decide(quick, approval_id, "approve")).status_code == 200
    changed = await call(quick, "writer-agent", "notes__add_note", {**args, "body": "something else"})
    assert pending_id(changed) != approval_id
    other_identity = await call(quick, "lead-agent", "notes__add_note", args)
    assert pending_id(other_identity) != approval_id
    assert approval_row(quick, approval_id)["state"] == "approved"  # still there for the exact call
    assert not (await call(quick, "writer-agent", "notes__add_note", args)).is_error


async def test_tool_scope_covers_other_arguments_of_the_same_identity(quick: Gateway) -> None:
    approval_id = pending_id(await call(quick, "writer-agent", "notes__echo", {"text": "first"}))
    assert approval_row(quick, approval_id)["scope"] == "tool"
    assert (await decide(quick, approval_id, "approve", reason="echo for ten minutes")).status_code == 200
    for text_ in ("first", "second", "third"):
        result = await call(quick, "writer-agent", "notes__echo", {"text": text_})
        assert not result.is_error and text_of(result) == text_
    assert pending_id(await call(quick, "lead-agent", "notes__echo", {"text": "x"})) != approval_id
    row = approval_row(quick, approval_id)
    assert row["state"] == "approved" and row["valid_until"] is not None
    uses = rows(quick, "SELECT outcome FROM audit_events WHERE approval_id = :id AND phase = 'outcome'", id=approval_id)
    assert [r["outcome"] for r in uses].count("ok") == 3


# ---- webhook ------------------------------------------------------------------------------


async def test_webhook_delivers_a_verifiable_signature(quick: Gateway, receiver: Receiver) -> None:
    approval_id = pending_id(
        await call(quick, "writer-agent", "notes__add_note", {"title": "publish hook", "body": "b"})
    )

    def delivery() -> Delivery:
        while True:
            got = receiver.deliveries.get(timeout=15)
            if json.loads(got.body)["approval"]["id"] == approval_id:
                return got

    got = await anyio.to_thread.run_sync(delivery)
    payload = json.loads(got.body)
    assert payload["event"] == "approval.pending" and got.headers["x-warden-event"] == "approval.pending"
    assert payload["url"].endswith(f"/approvals/{approval_id}")
    assert payload["approval"]["arguments"]["title"] == "publish hook"
    timestamp, signature = got.headers["x-warden-timestamp"], got.headers["x-warden-signature"]
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + got.body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert verify(WEBHOOK_SECRET, timestamp, got.body, signature)
    assert not verify("wrong-secret", timestamp, got.body, signature)
    assert not verify(WEBHOOK_SECRET, timestamp, got.body.replace(b"publish hook", b"publish hack"), signature)


# ---- bad input ----------------------------------------------------------------------------


async def test_bad_decisions_get_clear_4xx_and_change_nothing(quick: Gateway) -> None:
    approval_id = pending_id(
        await call(quick, "writer-agent", "notes__add_note", {"title": "publish bad", "body": "b"})
    )
    url = f"{quick.url}/approvals/{approval_id}"
    alice = auth(quick, "alice")
    async with httpx.AsyncClient() as http:
        no_key = await http.post(f"{url}/approve", json={"reason": "x"})
        bad_key = await http.post(f"{url}/approve", json={"reason": "x"}, headers={"Authorization": "Bearer nope"})
        no_role = await http.post(f"{url}/approve", json={"reason": "x"}, headers=auth(quick, "bob"))
        unknown = await http.post(
            f"{quick.url}/approvals/apr_doesnotexist/approve", json={"reason": "x"}, headers=alice
        )
        no_reason = await http.post(f"{url}/approve", json={}, headers=alice)
        blank = await http.post(f"{url}/deny", json={"reason": "   "}, headers=alice)
        extra = await http.post(f"{url}/deny", json={"reason": "x", "state": "approved"}, headers=alice)
        not_json = await http.post(
            f"{url}/approve", content=b"{nope", headers={**alice, "Content-Type": "application/json"}
        )
        wrong_verb = await http.post(f"{url}/maybe", json={"reason": "x"}, headers=alice)
        hidden = await http.get(url, headers=auth(quick, "bob"))
    assert (no_key.status_code, bad_key.status_code) == (401, 401)
    assert no_role.status_code == 403 and "needs one of the roles" in no_role.json()["detail"]
    assert unknown.status_code == 404 and "apr_doesnotexist" in unknown.json()["detail"]
    for response in (no_reason, blank, extra, not_json):
        assert response.status_code == 422 and response.json()["detail"][0]["msg"]
    assert wrong_verb.status_code in (404, 405)
    assert hidden.status_code == 403
    assert approval_row(quick, approval_id)["state"] == "pending"
    assert [a[0] for a in audit_of(quick, approval_id)] == ["tools/call", "tools/call"]  # no decision recorded

    assert (await decide(quick, approval_id, "deny", reason="first")).status_code == 200
    twice = await decide(quick, approval_id, "approve", reason="second")
    assert twice.status_code == 409 and "already denied by alice" in twice.json()["detail"]
    row = approval_row(quick, approval_id)
    assert (row["state"], row["decided_reason"]) == ("denied", "first")


# ---- expiry, restart, failure: a gateway each ---------------------------------------------


async def test_an_undecided_approval_expires_and_the_call_is_denied_and_audited(
    tmp_path_factory: pytest.TempPathFactory, policy_dir: Path, notes: NotesUpstream
) -> None:
    with _gateway(
        tmp_path_factory, policy_dir, notes, IDENTITIES, WARDEN_APPROVAL_HOLD_S="20", WARDEN_APPROVAL_TTL_S="1"
    ) as gw:
        result = await call(gw, "writer-agent", "notes__add_note", {"title": "publish too-late", "body": "b"})
        assert result.is_error and "expired" in text_of(result), text_of(result)
        approval_id = text_of(result).split()[2]
        assert approval_row(gw, approval_id)["state"] == "expired"
        assert audit_of(gw, approval_id) == [
            ("tools/call", "decision", "writer-agent", "approve", None),
            ("approvals/expire", "decision", "writer-agent", "deny", "denied"),
            ("tools/call", "outcome", "writer-agent", "deny", "denied"),
        ]
        late = await decide(gw, approval_id, "approve", reason="sorry, was away")
        assert late.status_code == 409 and "expired" in late.json()["detail"]
        assert await notes_titled(gw, "publish too-late") == 0


async def test_a_pending_approval_survives_a_gateway_restart(
    tmp_path_factory: pytest.TempPathFactory, policy_dir: Path, notes: NotesUpstream
) -> None:
    args = {"title": "publish after-restart", "body": "b"}
    with _gateway(tmp_path_factory, policy_dir, notes, IDENTITIES, WARDEN_APPROVAL_HOLD_S="0") as first:
        approval_id = pending_id(await call(first, "writer-agent", "notes__add_note", args))
    with _gateway(
        tmp_path_factory,
        policy_dir,
        notes,
        [],
        WARDEN_APPROVAL_HOLD_S="0",
        WARDEN_DATABASE_URL=first.database_url,
    ) as second:
        second.keys.update(first.keys)
        second.database_url = first.database_url
        async with httpx.AsyncClient() as http:
            listed = await http.get(f"{second.url}/approvals", headers=auth(second, "alice"))
        assert approval_id in [a["id"] for a in listed.json()]
        assert (await decide(second, approval_id, "approve", reason="after the restart")).status_code == 200
        result = await call(second, "writer-agent", "notes__add_note", args)
        assert not result.is_error, text_of(result)
        assert approval_row(second, approval_id)["state"] == "consumed"


async def test_an_unusable_approval_store_denies_the_call(
    tmp_path_factory: pytest.TempPathFactory, policy_dir: Path, notes: NotesUpstream
) -> None:
    with _gateway(tmp_path_factory, policy_dir, notes, IDENTITIES, WARDEN_APPROVAL_HOLD_S="0") as gw:
        engine = create_db_engine(gw.database_url)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE approvals RENAME TO approvals_offline"))
        engine.dispose()
        result = await call(gw, "writer-agent", "notes__add_note", {"title": "publish no-store", "body": "b"})
        assert result.is_error and "approval store" in text_of(result) and "fails closed" in text_of(result)
        denied = rows(gw, "SELECT * FROM audit_events WHERE method = 'tools/call' AND tool = 'add_note'")[-1]
        assert (denied["effect"], denied["outcome"], json.loads(denied["rule_ids"])) == (
            "deny",
            "denied",
            ["fail-closed"],
        )
        assert await notes_titled(gw, "publish no-store") == 0
