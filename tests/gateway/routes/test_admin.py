"""gateway/routes/admin.py: adapter promotion through the authenticated admin API, into a real vLLM.

The gateway runs as `warden gateway serve` (tests/gateway/harness.py) in front of PyPI
`mcp-server-time`, pointed at the session's real vLLM (tests/serving/vllm_harness.py)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.adapters.registry import AdapterRegistry, EvalScores
from gateway.db import create_db_engine
from serving.keys import bearer
from serving.process import VllmServer
from tests.gateway.harness import Gateway, run_gateway

POLICY = """
identities:
  root-admin:
    roles: [admin]
  agent:
    roles: [reader]
roles:
  admin: {}
  reader:
    grants: ["time__*"]
"""
UPSTREAMS = f"""
servers:
  time:
    command: {sys.executable}
    args: ["-m", "mcp_server_time", "--local-timezone", "UTC"]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, vllm: VllmServer) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("admin-gateway")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    env = {"WARDEN_VLLM_PORT": str(vllm.spec.port), "WARDEN_VLLM_API_KEY": vllm.api_key}
    with run_gateway(tmp, policy_dir, UPSTREAMS, ["root-admin", "agent"], **env) as gw:
        yield gw


def _register(gw: Gateway, name: str, base: Path, path: Path, score: float, base_score: float) -> None:
    engine = create_db_engine(gw.database_url)
    try:
        AdapterRegistry(engine).register(name, base, path, EvalScores("tool_call_accuracy", score, base_score, {}))
    finally:
        engine.dispose()


def _promote(gw: Gateway, name: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{gw.url}/admin/adapters/{name}/promote", headers=headers, timeout=180)


def _served(vllm: VllmServer) -> set[str]:
    models = httpx.get(f"{vllm.url}/v1/models", headers=bearer(vllm.api_key), timeout=10).json()["data"]
    return {m["id"] for m in models}


def _audit(gw: Gateway, name: str) -> list[dict[str, Any]]:
    engine = create_db_engine(gw.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT identity, effect, outcome, reason FROM audit_events "
                "WHERE method = 'admin/adapters/promote' AND tool = :t ORDER BY seq"
            ),
            {"t": name},
        )
        result = [dict(r._mapping) for r in rows]
    engine.dispose()
    return result


@pytest.mark.slow
def test_promotion_of_a_below_base_adapter_is_refused(
    gateway: Gateway, vllm: VllmServer, base_model: Path, tool_adapter: Path
) -> None:
    _register(gateway, "weak-adapter", base_model, tool_adapter, score=0.2, base_score=0.5)
    response = _promote(gateway, "weak-adapter", gateway.keys["root-admin"])
    assert response.status_code == 409
    assert "scores 0.200 tool_call_accuracy, below its base model's 0.500" in response.json()["detail"]
    assert "weak-adapter" not in _served(vllm)
    (event,) = _audit(gateway, "weak-adapter")
    assert (event["identity"], event["effect"], event["outcome"]) == ("root-admin", "deny", "denied")


@pytest.mark.slow
def test_promotion_loads_the_adapter_into_the_running_vllm(
    gateway: Gateway, vllm: VllmServer, base_model: Path, tool_adapter: Path, gateway_time_tools: list[dict[str, Any]]
) -> None:
    pid = vllm.process.pid
    _register(gateway, "promoted-adapter", base_model, tool_adapter, score=0.9, base_score=0.1)
    response = _promote(gateway, "promoted-adapter", gateway.keys["root-admin"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["loaded"] is True and body["adapter"]["promoted_by"] == "root-admin"
    assert "promoted-adapter" in _served(vllm) and vllm.process.pid == pid and vllm.process.poll() is None
    chat = httpx.post(
        f"{vllm.url}/v1/chat/completions",
        json={
            "model": "promoted-adapter",
            "messages": [{"role": "user", "content": "What time is it in Asia/Seoul?"}],
            "tools": gateway_time_tools,
            "temperature": 0,
            "max_tokens": 64,
        },
        headers=bearer(vllm.api_key),
        timeout=120,
    ).json()
    assert chat["choices"][0]["finish_reason"] == "tool_calls"
    again = _promote(gateway, "promoted-adapter", gateway.keys["root-admin"])
    assert again.status_code == 200 and again.json()["loaded"] is False
    assert [e["outcome"] for e in _audit(gateway, "promoted-adapter")] == ["ok", "ok"]


@pytest.mark.slow
def test_promotion_onto_a_server_with_another_base_is_refused(
    gateway: Gateway, vllm: VllmServer, base_model: Path, tool_adapter: Path, tmp_path: Path
) -> None:
    other_base = tmp_path / base_model.name  # same model name, another directory: another base as far as vLLM goes
    other_base.mkdir()
    for name in ("config.json", "chat_template.jinja"):
        shutil.copy(base_model / name, other_base / name)
    _register(gateway, "elsewhere-adapter", other_base, tool_adapter, score=0.9, base_score=0.1)
    response = _promote(gateway, "elsewhere-adapter", gateway.keys["root-admin"])
    assert response.status_code == 409
    assert f"but the server runs {base_model.resolve()}" in response.json()["detail"]
    assert "elsewhere-adapter" not in _served(vllm)


@pytest.mark.slow
def test_the_admin_api_needs_a_key_and_the_admin_role(gateway: Gateway) -> None:
    assert _promote(gateway, "anything", None).status_code == 401
    assert _promote(gateway, "anything", "wdn_aaaaaaaa_" + "b" * 43).status_code == 401
    refused = _promote(gateway, "anything", gateway.keys["agent"])
    assert refused.status_code == 403 and "does not hold the 'admin' role" in refused.json()["detail"]
    missing = _promote(gateway, "no-such-adapter", gateway.keys["root-admin"])
    assert missing.status_code == 404
    listing = httpx.get(
        f"{gateway.url}/admin/adapters", headers={"Authorization": f"Bearer {gateway.keys['root-admin']}"}, timeout=10
    )
    assert listing.status_code == 200 and isinstance(listing.json(), list)


def test_the_vllm_runtime_endpoint_is_not_exposed_by_the_gateway(tmp_path: Path) -> None:
    # the gateway reaches vLLM only through /admin/..., after authentication; vLLM's own paths are not on it
    from gateway.app import create_app
    from gateway.config import Settings

    paths = set(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}")).openapi()["paths"])
    assert not any("lora" in p for p in paths)
    assert sorted(p for p in paths if p.startswith("/admin")) == [
        "/admin/adapters",
        "/admin/adapters/{name}/promote",
        "/admin/policy/suggest",  # the starter policy from the live catalog (gateway.risk), not vLLM
        "/admin/tools",  # tools with their risk classes (gateway.risk), not vLLM
        "/admin/tools/pending",  # tool pinning review (gateway/routes/tools.py), not vLLM
        "/admin/tools/{pin_id}/{verdict}",
    ]
