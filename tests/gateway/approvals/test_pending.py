"""Calls answered "pending approval" at once (WARDEN_APPROVAL_HOLD_S=0) end to end: the webhook
announces the approval, a person decides over REST (bad decisions change nothing), and the
agent's retry runs exactly once. A real gateway process, real `mcp` clients, the real notes
upstream, a real SQLite database and a real HTTP receiver for the webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import httpx
import mcp_types as types
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.approvals.webhook import verify
from tests.gateway.approvals.harness import (
    IDENTITIES,
    WEBHOOK_SECRET,
    StartGateway,
    approval_row,
    audit_of,
    auth,
    call,
    decide,
    notes_titled,
    pending_id,
)
from tests.gateway.harness import Gateway, free_port, rows, text_of, wait_until

pytestmark = pytest.mark.anyio


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
def quick(approvals_gateway: StartGateway, receiver: Receiver) -> Iterator[Gateway]:
    """Calls answer "pending approval" at once; new approvals are sent to the webhook receiver."""
    with approvals_gateway(
        IDENTITIES,
        WARDEN_APPROVAL_HOLD_S="0",
        WARDEN_APPROVAL_WEBHOOK_URL=receiver.url,
        WARDEN_APPROVAL_WEBHOOK_SECRET=WEBHOOK_SECRET,
    ) as gw:
        yield gw


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
