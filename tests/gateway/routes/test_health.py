"""gateway/routes/health.py and the docs switch: what a caller without an operator key learns.

A real `warden gateway serve` with the default exposure settings (the harness makes details
public for other tests; here they are set back to the defaults), plus in-process apps for the
other settings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.app import create_app
from gateway.config import Settings
from tests.gateway.harness import FIXTURE_POLICY, Gateway, NotesUpstream, run_gateway, upstreams_yaml

DEFAULTS = {"WARDEN_HEALTH_DETAILS": "ops", "WARDEN_METRICS_ACCESS": "ops"}


def _policy_dir(tmp: Path) -> Path:
    policy = yaml.safe_load(FIXTURE_POLICY.read_text())
    policy["identities"]["night-shift"] = {"roles": ["monitor"]}
    policy["roles"]["monitor"] = {}
    (tmp / "policies").mkdir()
    (tmp / "policies" / "policy.yaml").write_text(yaml.safe_dump(policy))
    return tmp / "policies"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("health")
    identities = ["writer-agent", "night-shift"]
    with run_gateway(tmp, _policy_dir(tmp), upstreams_yaml(notes.url), identities, **DEFAULTS) as gateway:
        yield gateway


def _get(gw: Gateway, path: str, who: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {gw.keys[who]}"} if who else {}
    return httpx.get(f"{gw.url}{path}", headers=headers)


def test_defaults_keep_details_metrics_and_docs_private() -> None:
    settings = Settings()
    assert (settings.health_details, settings.metrics_access, settings.api_docs) == ("ops", "ops", False)


@pytest.mark.parametrize("who", [None, "writer-agent"])
def test_readyz_without_an_operator_key_names_no_upstream(gw: Gateway, notes: NotesUpstream, who: str | None) -> None:
    ready = _get(gw, "/readyz", who)
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "database": "ok",
        "policy": "loaded",
        "upstreams_ready": 2,
        "upstreams_total": 2,
    }
    for leak in ("notes", "time", "stdio", "http", str(notes.port), "last_error"):
        assert leak not in ready.text
    assert _get(gw, "/healthz", who).json() == {"status": "ok"}


def test_readyz_with_an_operator_key_has_the_details(gw: Gateway) -> None:
    upstreams = _get(gw, "/readyz", "night-shift").json()["upstreams"]
    assert {name: (u["transport"], u["state"]) for name, u in upstreams.items()} == {
        "time": ("stdio", "ready"),
        "notes": ("http", "ready"),
    }


def test_metrics_need_an_operator_key(gw: Gateway) -> None:
    assert _get(gw, "/metrics").status_code == 401
    assert _get(gw, "/metrics", "writer-agent").status_code == 403
    metrics = _get(gw, "/metrics", "night-shift")
    assert metrics.status_code == 200 and "warden_decisions_total" in metrics.text


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
@pytest.mark.parametrize("who", [None, "night-shift"])
def test_api_docs_are_not_served_by_default(gw: Gateway, path: str, who: str | None) -> None:
    assert _get(gw, path, who).status_code == 404


@contextlib.asynccontextmanager
async def in_process(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    upstreams = tmp_path / "upstreams.yaml"
    upstreams.write_text("servers: {}\n")
    base: dict[str, Any] = {"policy_dir": FIXTURE_POLICY.parent, "upstreams_file": upstreams, "policy_reload": False}
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}", **base, **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http


@pytest.mark.anyio
async def test_metrics_off_and_public(tmp_path: Path) -> None:
    async with in_process(tmp_path, metrics_access="off") as http:
        assert (await http.get("/metrics")).status_code == 404
    async with in_process(tmp_path, metrics_access="public", health_details="public") as http:
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/readyz")).json()["upstreams"] == {}


@pytest.mark.anyio
async def test_docs_when_switched_on(tmp_path: Path) -> None:
    async with in_process(tmp_path, api_docs=True) as http:
        assert (await http.get("/openapi.json")).status_code == 200
        assert (await http.get("/docs")).status_code == 200
