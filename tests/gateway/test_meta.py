"""Fidelity through the real gateway (gateway/meta.py, the JSON-RPC error relay in proxy/answers):
request `_meta` reaches the upstream minus the gateway's keys, result `_meta` reaches the client
minus the gateway's and the protocol's keys, and an upstream's JSON-RPC error stays a JSON-RPC
error, on both eras. The upstream is tests/upstreams/fidelity_server.py over stdio."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway.meta import to_client, to_upstream
from tests.gateway.harness import Gateway, connect, rows, run_gateway, text_of

pytestmark = pytest.mark.anyio

POLICY = """
identities:
  agent:
    grants: ["fid__*"]
"""
UPSTREAMS = f"""
servers:
  fid:
    command: {sys.executable}
    args: ["-m", "tests.upstreams.fidelity_server"]
    cwd: {Path(__file__).resolve().parents[2]}
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("fidelity")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    with run_gateway(tmp, policy_dir, UPSTREAMS, ["agent"]) as gateway:
        yield gateway


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_request_meta_reaches_the_upstream_without_the_gateways_keys(gw: Gateway, mode: str) -> None:
    sent = {
        "vendor.example/trace": "abc",
        "warden/request_id": "req-7",
        "warden/approval": "forged",
        "progressToken": "p-1",
        "io.modelcontextprotocol/clientInfo": {"name": "forged"},
    }
    async with connect(gw, "agent", mode) as client:
        result = await client.call_tool("fid__meta_echo", {}, meta=sent)  # type: ignore[arg-type]
    received = json.loads(text_of(result))
    assert received.get("vendor.example/trace") == "abc"
    assert not [k for k in received if k.startswith("warden/")], received
    assert "progressToken" not in received and "progress_token" not in received, received
    assert received.get("io.modelcontextprotocol/clientInfo") != {"name": "forged"}, "the client's envelope stays here"
    calls = rows(gw, "SELECT request_ref FROM audit_events WHERE tool = 'meta_echo' AND phase = 'decision'")
    assert calls[-1]["request_ref"] == "req-7", "the gateway still reads its own key"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_result_meta_reaches_the_client_without_gateway_or_protocol_keys(gw: Gateway, mode: str) -> None:
    async with connect(gw, "agent", mode) as client:
        result = await client.call_tool("fid__meta_echo", {})
    assert result.meta is not None and result.meta.get("vendor.example/trace") == "t-42"
    assert "warden/approved_by" not in result.meta, "an upstream cannot speak for the gateway"
    assert "io.modelcontextprotocol/related-task" not in result.meta


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_upstream_jsonrpc_error_stays_a_jsonrpc_error_and_is_audited(gw: Gateway, mode: str) -> None:
    async with connect(gw, "agent", mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("fid__refuse", {"reason": "no"})
        assert refused.value.code == types.INVALID_PARAMS and refused.value.message == "refused: no"
        assert refused.value.data == {"reason": "no"}
        again = await client.call_tool("fid__meta_echo", {})
        assert not again.is_error, "the session keeps working"
    outcome = rows(gw, "SELECT outcome, error FROM audit_events WHERE tool = 'refuse' AND phase = 'outcome'")[-1]
    assert outcome["outcome"] == "upstream_error" and "-32602" in str(outcome["error"])


def test_owned_keys_are_filtered_both_ways() -> None:
    assert to_upstream({"warden/x": 1, "progressToken": 2, "progress_token": 3, "io.modelcontextprotocol/y": 4}) is None
    assert to_upstream({"a/b": 1, "warden/x": 2}) == {"a/b": 1}
    result = types.CallToolResult(content=[], _meta={"warden/x": 1, "io.modelcontextprotocol/related-task": {}})
    assert to_client(result).meta is None
    kept = types.CallToolResult(content=[], _meta={"v/k": 1, "warden/x": 1})
    assert to_client(kept).meta == {"v/k": 1}
