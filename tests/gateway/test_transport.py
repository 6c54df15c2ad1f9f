"""Answers around the SDK's Streamable HTTP transport (gateway/transport.py), on the real gateway:
an unknown MCP-Protocol-Version is refused naming the supported versions, and a refused opening
request never hands out a session id (which would only ever answer 404)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.transport import SUPPORTED_VERSIONS
from tests.gateway.harness import Gateway, run_gateway

POLICY = "identities:\n  agent:\n    grants: ['*']\n"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("transport")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    with run_gateway(tmp, policy_dir, "servers: {}\n", ["agent"]) as gateway:
        yield gateway


def post(gw: Gateway, body: Any, **headers: str) -> httpx.Response:
    sent = {
        "Authorization": f"Bearer {gw.keys['agent']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        **headers,
    }
    return httpx.post(gw.mcp_url, headers=sent, content=body if isinstance(body, str) else json.dumps(body))


@pytest.mark.parametrize("version", ["1999-01-01", "banana", "2026-07-29", "x" * 500])
def test_an_unknown_protocol_version_header_names_the_supported_ones(gw: Gateway, version: str) -> None:
    for body in (INIT, LIST):
        answer = post(gw, body, **{"MCP-Protocol-Version": version})
        assert answer.status_code == 400 and "mcp-session-id" not in answer.headers
        error = answer.json()["error"]
        assert error["code"] == -32022 and all(v in error["message"] for v in SUPPORTED_VERSIONS), error
        assert error["data"]["supported"] == list(SUPPORTED_VERSIONS) and len(error["data"]["requested"]) <= 64


@pytest.mark.parametrize(
    "body", ["{not json", json.dumps([INIT]), json.dumps(LIST), json.dumps({"jsonrpc": "2.0", "id": 3})]
)
def test_a_refused_opening_request_gets_no_session_id(gw: Gateway, body: str) -> None:
    answer = post(gw, body)
    assert answer.status_code >= 400 and answer.json()["jsonrpc"] == "2.0"
    assert "mcp-session-id" not in answer.headers, "a session id the gateway already discarded"


def test_a_good_opening_request_still_gets_its_session_and_keeps_it(gw: Gateway) -> None:
    opened = post(gw, INIT)
    session = opened.headers.get("mcp-session-id")
    assert opened.status_code == 200 and session
    version = {"MCP-Protocol-Version": "2025-06-18", "Mcp-Session-Id": session}
    assert post(gw, {"jsonrpc": "2.0", "method": "notifications/initialized"}, **version).status_code == 202
    listed = post(gw, LIST, **version)
    assert listed.status_code == 200 and listed.json()["result"]["tools"] == []
    bogus = post(gw, {**LIST, "params": {"cursor": "nope"}}, **version)
    assert bogus.json()["error"]["code"] == -32602
