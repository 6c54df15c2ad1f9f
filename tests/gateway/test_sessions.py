"""gateway/sessions.py through a real `warden gateway serve`: one identity flooding 2025-protocol
sessions hits its own cap (a clear JSON-RPC 429), never the global one, and other identities keep
opening sessions and calling tools."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.gateway.harness import Gateway, NotesUpstream, connect, fixture_policy_dir, run_gateway, upstreams_yaml

PER_IDENTITY, GLOBAL = 3, 8


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("sessions")
    env = {"WARDEN_MCP_SESSIONS_PER_IDENTITY": str(PER_IDENTITY), "WARDEN_MCP_MAX_SESSIONS": str(GLOBAL)}
    identities = ["writer-agent", "reader-agent", "alice"]
    with run_gateway(tmp, fixture_policy_dir(tmp), upstreams_yaml(notes.url), identities, **env) as gateway:
        yield gateway


def _open(gw: Gateway, identity: str) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "f", "version": "1"}},
    }
    headers = {"Authorization": f"Bearer {gw.keys[identity]}", "Accept": "application/json, text/event-stream"}
    return httpx.post(gw.mcp_url, json=body, headers=headers)


def _close(gw: Gateway, identity: str, session_id: str) -> None:
    headers = {"Authorization": f"Bearer {gw.keys[identity]}", "Mcp-Session-Id": session_id}
    assert httpx.delete(gw.mcp_url, headers=headers).status_code in (200, 204)


@pytest.mark.anyio
async def test_a_session_flood_by_one_identity_leaves_the_others_working(gw: Gateway) -> None:
    flood = [_open(gw, "writer-agent") for _ in range(4 * GLOBAL)]
    opened = [r.headers["mcp-session-id"] for r in flood if r.status_code == 200]
    refused = [r for r in flood if r.status_code != 200]
    assert len(opened) == PER_IDENTITY
    assert {r.status_code for r in refused} == {429}
    error = refused[0].json()
    assert error["jsonrpc"] == "2.0" and error["error"]["code"] == -32600
    assert "'writer-agent'" in error["error"]["message"] and f"limit is {PER_IDENTITY}" in error["error"]["message"]

    for mode in ("legacy", "auto"):  # the victim: a real SDK client, both protocol eras
        async with connect(gw, "reader-agent", mode) as client:
            result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not result.is_error
    others = [_open(gw, "reader-agent") for _ in range(PER_IDENTITY)]
    assert [r.status_code for r in others] == [200] * PER_IDENTITY
    for r in others:
        _close(gw, "reader-agent", r.headers["mcp-session-id"])

    _close(gw, "writer-agent", opened[0])  # ending a session frees its slot
    assert _open(gw, "writer-agent").status_code == 200
    assert _open(gw, "writer-agent").status_code == 429


def test_another_identitys_session_cannot_be_borrowed(gw: Gateway) -> None:
    # reusing someone else's session id is refused (the SDK binds sessions to their opener)
    mine = _open(gw, "reader-agent")
    assert mine.status_code == 200
    headers = {
        "Authorization": f"Bearer {gw.keys['writer-agent']}",
        "Mcp-Session-Id": mine.headers["mcp-session-id"],
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    stolen = httpx.post(gw.mcp_url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers)
    assert stolen.status_code == 404
    _close(gw, "reader-agent", mine.headers["mcp-session-id"])


def test_concurrent_opens_by_one_identity_cannot_pass_the_cap(gw: Gateway) -> None:
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: _open(gw, "alice").status_code, range(24)))
    assert statuses == [200] * PER_IDENTITY + [429] * (24 - PER_IDENTITY)
