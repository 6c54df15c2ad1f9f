"""Two gateway replicas (real `warden gateway serve` processes) on one real PostgreSQL, in front of
the real notes upstream: an approval held in one is released promptly by a decision in the other
(LISTEN/NOTIFY, with polling set to a minute), and one replica SIGKILLed mid-load loses no
acknowledged call's audit records and doubles no rate-limit budget."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from gateway.audit.verify import verify
from gateway.db import create_db_engine
from tests.gateway.approvals.harness import POLICY, call, decide, pending_for
from tests.gateway.conftest import PostgresServer
from tests.gateway.harness import Gateway, NotesUpstream, connect, rows, run_gateway, text_of
from tests.gateway.shared.lb import run_haproxy

pytestmark = pytest.mark.anyio

LIMIT = 40
LOAD_POLICY = f"""
identities:
  loader: {{grants: ["notes__echo"]}}
rate_limits:
  - {{id: rl-echo, tools: [notes__echo], limit: {LIMIT}, window_s: 3600}}
"""
_numbers = itertools.count()


def notes_only(url: str) -> str:
    return f"servers:\n  notes:\n    url: {url}\n    headers_from_env:\n      X-Upstream-Token: NOTES_UPSTREAM_TOKEN\n"


@contextlib.contextmanager
def replicas(
    tmp: Path, server: PostgresServer, notes: NotesUpstream, policy: str, identities: list[str], **env: str
) -> Iterator[tuple[Gateway, Gateway]]:
    """Two gateways on one fresh PostgreSQL database, sharing its keys."""
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(policy)
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    with (
        server.fresh_database("warden_replicas") as url,
        run_gateway(tmp / "a", policy_dir, notes_only(notes.url), identities, url, **env) as first,
        run_gateway(tmp / "b", policy_dir, notes_only(notes.url), [], url, **env) as second,
    ):
        second.keys = first.keys
        yield first, second


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer, notes: NotesUpstream
) -> Iterator[tuple[Gateway, Gateway]]:
    """Two replicas on the approvals policy; decisions are re-read only every 60 s (polling can't explain a wake)."""
    slow_poll = {"WARDEN_APPROVAL_POLL_S": "60", "WARDEN_APPROVAL_HOLD_S": "40", "WARDEN_APPROVAL_TTL_S": "120"}
    tmp = tmp_path_factory.mktemp("pair")
    with replicas(tmp, postgres_server, notes, POLICY, ["writer-agent", "alice"], **slow_poll) as both:
        yield both


@pytest.mark.slow
async def test_an_approval_decided_on_one_replica_releases_the_call_held_on_the_other(
    pair: tuple[Gateway, Gateway],
) -> None:
    a, b = pair
    box: dict[str, types.CallToolResult] = {}
    answered = anyio.Event()

    async def held() -> None:
        box["result"] = await call(a, "writer-agent", "notes__add_note", {"title": "publish across", "body": "x"})
        answered.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(held)
        approval = await pending_for(b, "publish across")
        decided = await decide(b, approval["id"], "approve")
        assert decided.status_code == 200, decided.text
        with anyio.fail_after(15):  # far less than the 60 s poll: the notification woke it
            await answered.wait()
    assert not box["result"].is_error, text_of(box["result"])


async def legacy_calls(lb: Gateway, sessions: int, calls: int) -> list[str]:
    """Open ``sessions`` 2025-protocol sessions through the balancer, ``calls`` calls each; the failures."""
    failures = []
    for _ in range(sessions):
        try:
            async with connect(lb, "writer-agent", mode="legacy") as client:
                for _ in range(calls):
                    result = await client.call_tool("notes__list_notes", {})
                    if result.is_error:
                        failures.append(text_of(result))
        except Exception as exc:  # the session was lost: what an unsticky balancer causes
            failures.append(type(exc).__name__)
    return failures


@pytest.mark.slow
async def test_2025_sessions_stay_on_their_replica_behind_haproxy(
    tmp_path: Path, pair: tuple[Gateway, Gateway]
) -> None:
    """The shipped examples/haproxy.cfg routes by Mcp-Session-Id; without its stick lines sessions break."""
    a, b = pair
    with run_haproxy(tmp_path, [a.port, b.port]) as url:
        lb = dataclasses.replace(a, port=int(url.rsplit(":", 1)[1]))
        assert await legacy_calls(lb, sessions=4, calls=4) == []
    with run_haproxy(tmp_path, [a.port, b.port], sticky=False) as url:
        lb = dataclasses.replace(a, port=int(url.rsplit(":", 1)[1]))
        assert await legacy_calls(lb, sessions=2, calls=2) != []  # the control: round robin alone loses sessions


class Load:
    """Calls of notes__echo spread over two replicas; what each client saw acknowledged."""

    def __init__(self, a: Gateway, b: Gateway, per_worker: int) -> None:
        self.a, self.b, self.per_worker = a, b, per_worker
        self.acked: dict[str, types.CallToolResult] = {}
        self.acked_on_a = 0
        self.a_busy = anyio.Event()
        self.lost = 0

    async def worker(self, k: int) -> None:
        target, n = (self.a if k % 2 == 0 else self.b), 0
        while n < self.per_worker:
            try:
                async with connect(target, "loader") as client:
                    while n < self.per_worker:
                        text, n = f"m-{k}-{n}", n + 1
                        with anyio.fail_after(30):
                            result = await client.call_tool("notes__echo", {"text": text})
                        self.acked[text] = result
                        self.count(target)
            except Exception:  # the killed replica: that call is unacknowledged; go to the other
                self.lost += 1
                target = self.b

    def count(self, target: Gateway) -> None:
        if target is self.a:
            self.acked_on_a += 1
            if self.acked_on_a >= 6:
                self.a_busy.set()

    async def kill_a(self) -> None:
        with anyio.fail_after(60):
            await self.a_busy.wait()
        await anyio.to_thread.run_sync(self.a.kill)


def audit_by_text(gw: Gateway) -> dict[str, list[dict[str, Any]]]:
    """Every audit event of notes__echo calls, by the echoed text (found through the decision's call_id).

    Only ``tools/call`` events: the pool also audits ``tools/pin`` decisions for the echo tool (each replica's first
    sight of its definition), which are no calls and take nothing from the budget."""
    events = rows(gw, "SELECT * FROM audit_events WHERE tool = 'echo' AND method = 'tools/call' ORDER BY seq")
    texts = {e["call_id"]: json.loads(e["arguments"]).get("text") for e in events if e["phase"] == "decision"}
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        found.setdefault(texts.get(event["call_id"], "?"), []).append(event)
    return found


@pytest.mark.slow
async def test_killing_a_replica_mid_load_keeps_every_acknowledged_call_audited_and_one_budget(
    tmp_path: Path, postgres_server: PostgresServer, notes: NotesUpstream
) -> None:
    with replicas(tmp_path, postgres_server, notes, LOAD_POLICY, ["loader"]) as (a, b):
        load = Load(a, b, per_worker=15)  # 8 workers x 15 = 120 calls for a budget of 40
        async with anyio.create_task_group() as tg:
            tg.start_soon(load.kill_a)
            for k in range(8):
                tg.start_soon(load.worker, k)
        assert a.process.poll() is not None, "replica A was killed mid-load"
        audit = audit_by_text(b)
        allowed = [t for t, r in load.acked.items() if not r.is_error]
        limited = [t for t, r in load.acked.items() if "rate limit rl-echo" in text_of(r)]
        refused = [t for t, r in load.acked.items() if r.is_error and t not in limited]
        assert limited, "the load exceeds the budget: some calls must be refused by it"
        assert refused == [], {text_of(load.acked[t]) for t in refused}  # one audit chain, several writers
        for text in allowed:  # acknowledged and run: its decision and its outcome are both in the log
            phases = {(e["phase"], e["effect"], e["outcome"]) for e in audit[text]}
            assert ("decision", "allow", None) in phases and ("outcome", "allow", "ok") in phases, (text, phases)
        for text in limited:  # acknowledged as refused: one event, the deny with its outcome
            assert [(e["effect"], e["outcome"]) for e in audit[text]] == [("deny", "denied")], text
        granted = [
            e for events in audit.values() for e in events if e["phase"] == "decision" and e["effect"] == "allow"
        ]
        assert len(allowed) <= len(granted) <= LIMIT  # one budget across both replicas, never one each
        hits = rows(b, "SELECT count(*) AS n FROM ratelimit_hits WHERE limit_id = 'rl-echo'")[0]["n"]
        assert hits == LIMIT
        assert_chain_verifies(b)


def assert_chain_verifies(gw: Gateway) -> None:
    engine = create_db_engine(gw.database_url)
    try:
        report = verify(engine, None)
    finally:
        engine.dispose()
    assert report.ok, report
