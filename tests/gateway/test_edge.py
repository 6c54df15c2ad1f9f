"""gateway/edge.py through a real `warden gateway serve`: DNS-rebinding protection (Host and Origin
checked against the allow list, with a valid key) and body caps on /mcp answered as JSON-RPC errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from gateway.app import create_app
from gateway.config import Settings
from tests.gateway.harness import (
    FIXTURE_POLICY,
    Gateway,
    NotesUpstream,
    connect,
    fixture_policy_dir,
    run_gateway,
    upstreams_yaml,
)
from tests.gateway.wire import declare_body, stream_body

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("edge")
    env = {"WARDEN_PUBLIC_BASE_URL": "https://warden.example.org", "WARDEN_ALLOWED_HOSTS": '["gw.internal"]'}
    with run_gateway(tmp, fixture_policy_dir(tmp), upstreams_yaml(notes.url), ["writer-agent"], **env) as gateway:
        yield gateway


def _initialize(gw: Gateway, **headers: str) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    auth = {"Authorization": f"Bearer {gw.keys['writer-agent']}", "Accept": "application/json, text/event-stream"}
    return httpx.post(gw.mcp_url, json=body, headers={**auth, **headers})


@pytest.mark.parametrize(
    "host",
    [
        "evil.example.com",
        "evil.example.com:8700",
        "localhost.evil.example.com",
        "127.0.0.1.nip.io",
        "warden.example.org.evil.example.com",
        "evil.example.com@127.0.0.1",
        "",
    ],
)
def test_a_foreign_host_is_refused_even_with_a_valid_key(gw: Gateway, host: str) -> None:
    mcp = _initialize(gw, Host=host)
    assert mcp.status_code == 403, mcp.text
    error = mcp.json()
    assert error["jsonrpc"] == "2.0" and error["error"]["code"] == -32600 and "host" in error["error"]["message"]
    api = httpx.get(f"{gw.url}/approvals", headers={"Authorization": f"Bearer {gw.keys['writer-agent']}", "Host": host})
    assert api.status_code == 403 and "host" in api.json()["detail"]


@pytest.mark.parametrize(
    "origin", ["http://evil.example.com", "https://evil.example.com:443", "null", "http://localhost.evil.example.com"]
)
def test_a_foreign_origin_is_refused_even_with_a_valid_key(gw: Gateway, origin: str) -> None:
    response = _initialize(gw, Origin=origin)
    assert response.status_code == 403, response.text
    assert "origin" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("127.0.0.1", None),
        ("localhost:8700", "http://localhost:3000"),
        ("[::1]:8700", "http://[::1]:8700"),
        ("warden.example.org", "https://warden.example.org"),
        ("GW.internal:9000", "http://gw.internal:9000"),
    ],
)
def test_loopback_the_public_url_and_configured_hosts_are_served(gw: Gateway, host: str, origin: str | None) -> None:
    response = _initialize(gw, Host=host, **({"Origin": origin} if origin else {}))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "warden-gateway"


def test_an_oversized_mcp_body_is_a_jsonrpc_413_before_it_is_read(gw: Gateway) -> None:
    auth = {"Authorization": f"Bearer {gw.keys['writer-agent']}", "Content-Type": "application/json", **MCP_HEADERS}
    declared = declare_body(gw.port, "POST", "/mcp", 100 * 1024 * 1024, auth)
    assert declared.status == 413
    assert declared.json()["error"]["code"] == -32600 and "1048576 bytes" in declared.json()["error"]["message"]
    streamed = stream_body(gw.port, "POST", "/mcp", 64 * 1024 * 1024, auth)
    assert streamed.status == 413 and streamed.sent < 16 * 1024 * 1024, streamed
    assert streamed.json()["jsonrpc"] == "2.0"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_sdk_client_sending_an_oversized_argument_reads_a_jsonrpc_error(gw: Gateway, mode: str) -> None:
    async with connect(gw, "writer-agent", mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("notes__echo", {"text": "x" * 1_500_000})
        assert "request body too large: at most 1048576 bytes" in refused.value.message
        small = await client.call_tool("notes__echo", {"text": "x"})
        assert not small.is_error, "the client and its session keep working"


def test_an_unauthenticated_mcp_body_is_refused_before_it_is_sent(gw: Gateway) -> None:
    answer = declare_body(gw.port, "POST", "/mcp", 500_000, {"Content-Type": "application/json", **MCP_HEADERS})
    assert answer.status == 401


def test_the_gateway_serves_after_the_attacks(gw: Gateway) -> None:
    assert _initialize(gw).status_code == 200


@pytest.mark.anyio
async def test_a_route_body_limit_overrides_the_default_cap(tmp_path: Path) -> None:
    upstreams = tmp_path / "upstreams.yaml"
    upstreams.write_text("servers: {}\n")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'w.db'}",
        policy_dir=FIXTURE_POLICY.parent,
        upstreams_file=upstreams,
        policy_reload=False,
        route_body_limits={"/approvals": 100},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            capped = await http.post("/approvals/x/approve", json={"reason": "r" * 200})
            small = await http.post("/approvals/x/approve", json={"reason": "r"})
            evil = await http.get("/healthz", headers={"Host": "evil.example.com"})
    assert capped.status_code == 413 and "at most 100 bytes" in capped.json()["detail"]
    assert small.status_code == 401
    assert evil.status_code == 403
