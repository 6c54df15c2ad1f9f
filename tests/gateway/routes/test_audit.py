"""gateway/routes/audit.py: the audit API of the real gateway app (its real lifespan, in-process
over ASGI), with API keys from the identity store and roles from the shipped policies
(alice is an auditor; research-agent is an agent). On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.audit.checkpoints import load_public_key, new_signing_key
from gateway.audit.verify import verify
from gateway.config import Settings
from gateway.db import create_db_engine
from gateway.identities import IdentityStore
from tests.gateway.audit.events import make_event

pytestmark = pytest.mark.anyio

SEED, PUBLIC = new_signing_key()
SHIPPED_POLICIES = Path(__file__).resolve().parents[3] / "policies"
T0 = datetime(2026, 4, 1, tzinfo=UTC)


@dataclass
class Api:
    app: FastAPI
    http: httpx.AsyncClient
    keys: dict[str, str]

    async def get(self, path: str, who: str | None = "alice", **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return await self.http.get(path, params=params, headers=headers)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    engine = create_db_engine(database_url)
    store = IdentityStore(engine)
    keys = {name: store.create(name)[1] for name in ("alice", "research-agent", "unknown-to-policy")}
    engine.dispose()
    upstreams = tmp_path / "upstreams.yaml"
    upstreams.write_text("servers: {}\n")
    settings = Settings(
        database_url=database_url,
        policy_dir=SHIPPED_POLICIES,
        upstreams_file=upstreams,
        policy_reload=False,
        audit_signing_key=SEED,
        audit_checkpoint_every=10,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        writer = app.state.gateway.audit
        for n in range(30):
            identity = ("research-agent", "ops-agent")[n % 2]
            effect = ("allow", "deny", "allow")[n % 3]
            await writer.record(make_event(n, identity=identity, effect=effect, ts=T0 + timedelta(minutes=n)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield Api(app, http, keys)


async def test_an_auditor_reads_the_log(api: Api) -> None:
    response = await api.get("/audit/events", identity="ops-agent", effect="deny")
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert events and all(e["identity"] == "ops-agent" and e["effect"] == "deny" for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


async def test_agents_and_identities_without_the_role_get_403(api: Api) -> None:
    for who in ("research-agent", "unknown-to-policy"):
        for path in ("/audit/events", "/audit/events/1", "/audit/stats", "/audit/export"):
            response = await api.get(path, who=who)
            assert response.status_code == 403, (who, path, response.text)
            assert "auditor" in response.json()["detail"]


async def test_a_missing_or_invalid_key_gets_401(api: Api) -> None:
    assert (await api.get("/audit/events", who=None)).status_code == 401
    response = await api.http.get("/audit/events", headers={"Authorization": "Bearer wdn_nothing_here"})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


async def test_pages_follow_next_cursor(api: Api) -> None:
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 4, "order": "desc"}
    while True:
        body = (await api.get("/audit/events", **params)).json()
        seen += [e["seq"] for e in body["events"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == list(range(30, 0, -1))


async def test_a_time_range_and_free_text(api: Api) -> None:
    body = (await api.get("/audit/events", since="2026-04-01T00:10:00Z", until="2026-04-01T00:15:00Z")).json()
    assert [e["seq"] for e in body["events"]] == [11, 12, 13, 14, 15]
    body = (await api.get("/audit/events", text='{"n":7}')).json()
    assert [e["arguments"] for e in body["events"]] == [{"n": 7}]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tool_name": "x"}, "tool_name"),
        ({"effect": "maybe"}, "effect"),
        ({"since": "not-a-time"}, "since"),
        ({"since": "2026-04-02", "until": "2026-04-01"}, "until"),
        ({"cursor": "abc"}, "cursor"),
        ({"limit": 5000}, "limit"),
        ({"order": "sideways"}, "order"),
    ],
)
async def test_bad_parameters_get_422_naming_the_field(api: Api, params: dict[str, Any], field: str) -> None:
    response = await api.get("/audit/events", **params)
    assert response.status_code == 422, response.text
    assert [e["loc"][-1] for e in response.json()["detail"]] == [field]


async def test_one_event_with_its_trail_and_404_for_an_unknown_one(api: Api) -> None:
    body = (await api.get("/audit/events/5")).json()
    assert body["event"]["seq"] == 5 and [e["seq"] for e in body["trail"]] == [5]
    assert body["approval"] is None
    assert (await api.get("/audit/events/999")).status_code == 404
    assert (await api.get("/audit/events/0")).status_code == 422


async def test_stats_count_by_identity_and_effect(api: Api) -> None:
    response = await api.get("/audit/stats", group_by=["identity", "effect"])
    assert response.status_code == 200, response.text
    body = response.json()
    counts = {(r["group"]["identity"], r["group"]["effect"]): r["events"] for r in body["rows"]}
    assert counts == {
        ("research-agent", "allow"): 10,
        ("research-agent", "deny"): 5,
        ("ops-agent", "allow"): 10,
        ("ops-agent", "deny"): 5,
    }
    assert body["total_events"] == 30
    bad = await api.get("/audit/stats", group_by="colour")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-2:] == ["group_by", 0]


async def test_export_streams_jsonl_and_csv(api: Api) -> None:
    async with api.http.stream(
        "GET",
        "/audit/export",
        params={"identity": "ops-agent"},
        headers={"Authorization": f"Bearer {api.keys['alice']}"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    assert [e["seq"] for e in lines] == list(range(2, 31, 2))
    response = await api.get("/audit/export", format="csv", effect="deny")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["seq"]) for r in rows] == list(range(2, 31, 3))


async def test_the_gateway_signs_checkpoints_with_its_configured_key(api: Api) -> None:
    report = verify(api.app.state.gateway.engine, load_public_key(PUBLIC))
    assert report.ok and report.signatures_checked and report.checkpoints == 3
