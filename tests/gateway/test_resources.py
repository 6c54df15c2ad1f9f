"""Resources through the real gateway (gateway/resources.py): server-everything (npm, stdio) and the
conformance upstream (stdio) behind a gateway process; real MCP SDK clients as two identities."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.gateway.harness import REPO, Gateway, connect, rows, run_gateway
from tests.gateway.risk.servers import install_npm_servers, npm_bin

POLICY = """
identities:
  reader: {roles: [reader]}
  other: {roles: [other]}
  alice: {roles: [approver]}
roles:
  reader:
    grants: ["everything__get-resource-links", "everything__toggle-subscriber-updates", "conf__test_embedded_resource"]
    resources:
      everything: ["demo://resource/static/document/*", "demo://resource/dynamic/text/*"]
      conf: ["test://static-text", "test://static-binary", "test://template/*/data", "test://embedded-resource"]
    prompts: ["everything__simple-prompt", "everything__args-prompt", "everything__completable-prompt", "conf__*"]
  other:
    grants: ["everything__toggle-subscriber-updates"]
    resources:
      everything: ["demo://resource/dynamic/text/*"]
  approver: {}
rules:
  - id: approve-args-prompt
    effect: approve
    prompts: ["everything__args-prompt"]
    reason: this prompt is reviewed by a person
    approvers: [approver]
"""
IDENTITIES = ["reader", "other", "alice"]
pytestmark = pytest.mark.anyio

NOT_FOUND = -32002
DOC = "demo://resource/static/document/architecture.md"


def upstreams() -> str:
    return f"""
servers:
  everything:
    command: {npm_bin("everything")}
  conf:
    command: {sys.executable}
    args: ["-m", "tests.upstreams.conformance_server", "--stdio"]
    cwd: {REPO}
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    install_npm_servers()
    tmp = tmp_path_factory.mktemp("resources")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    env = {"WARDEN_APPROVAL_POLL_S": "0.1", "WARDEN_APPROVAL_HOLD_S": "0.2", "WARDEN_LIST_PAGE_SIZE": "3"}
    with run_gateway(tmp, policy_dir, upstreams(), IDENTITIES, **env) as gateway:
        yield gateway


def audit(gw: Gateway, method: str) -> list[dict[str, object]]:
    return rows(gw, "SELECT * FROM audit_events WHERE method = :m ORDER BY seq", m=method)


async def test_an_identity_reads_a_granted_resource_and_an_ungranted_one_answers_like_a_missing_one(gw: Gateway) -> None:
    async with connect(gw, "reader") as client:
        result = await client.read_resource(f"everything+{DOC}")
        assert result.contents[0].uri == f"everything+{DOC}"
        assert "architecture" in getattr(result.contents[0], "text", "").lower()
    async with connect(gw, "other") as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource(f"everything+{DOC}")
        with pytest.raises(MCPError) as missing:
            await client.read_resource("everything+demo://resource/static/document/no-such.md")
    assert refused.value.error.code == missing.value.error.code == NOT_FOUND
    assert refused.value.error.message.replace(DOC, "X") == missing.value.error.message.replace(
        "demo://resource/static/document/no-such.md", "X"
    )
