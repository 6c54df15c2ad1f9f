"""The suggestion, adopted through the admin API and enforced by a real gateway, decides as it promised.

A real `warden gateway serve` runs in front of the five real servers with only an admin in its
policy. The admin asks for the suggestion (GET /admin/policy/suggest), writes it (POST), the
gateway hot-reloads it, and real MCP clients call every tool as the suggestion's example reader
and operator: each decision the gateway logs equals the one the generated test cases promise.
Held calls never reach the upstream; every decision event carries the tool's risk.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import pytest
import yaml
from mcp.shared.exceptions import MCPError
from mcp_types import RequestParamsMeta

from gateway.mcp_front import REQUEST_REF_META_KEY
from gateway.risk import classify
from gateway.risk.suggest import CatalogTool, example_arguments
from tests.gateway.harness import REPO, Gateway, connect, rows, run_gateway, text_of, wait_until

ADMIN = "identities:\n  root-admin:\n    roles: [admin]\nroles:\n  admin: {}\n"
READER, OPERATOR = "example-reader", "example-operator"


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory, five_servers: Path) -> Iterator[tuple[Gateway, dict[str, Any]]]:
    """The gateway after the admin adopted the suggestion, and the suggestion's review."""
    tmp = tmp_path_factory.mktemp("enforced")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "admin.yaml").write_text(ADMIN)
    identities = ["root-admin", READER, OPERATOR]
    env = {"WARDEN_APPROVAL_HOLD_S": "0", "WARDEN_UPSTREAM_CALL_TIMEOUT_S": "5"}
    with run_gateway(tmp, policy_dir, five_servers.read_text(), identities, **env) as gw:
        admin = {"Authorization": f"Bearer {gw.keys['root-admin']}"}
        review = httpx.get(f"{gw.url}/admin/policy/suggest", headers=admin, timeout=120).json()
        assert review["passes"] and not (policy_dir / "suggested.yaml").exists()
        response = httpx.post(f"{gw.url}/admin/policy/suggest", json={"write": True}, headers=admin, timeout=120)
        assert response.status_code == 200, response.text
        assert (policy_dir / "suggested.yaml").read_text() == review["files"][str(policy_dir / "suggested.yaml")]
        wait_until(lambda: "policy reloaded" in gw.log(), 30, "the gateway to reload the written policy")
        yield gw, review


def promised(review: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(identity, tool) -> effect, from the generated case file."""
    cases_text = next(text for path, text in review["files"].items() if "/tests/" in path)
    return {(c["identity"], c["tool"]): c["expect"]["effect"] for c in yaml.safe_load(cases_text)["cases"]}


def test_every_call_is_decided_as_the_suggestion_promised(
    adopted: tuple[Gateway, dict[str, Any]], live: list[CatalogTool]
) -> None:
    gw, review = adopted
    expected = promised(review)
    by_name = {e.public_name: e for e in live}

    async def call_all() -> None:
        for identity in (READER, OPERATOR):
            async with connect(gw, identity) as client:
                for tool in sorted(by_name):
                    args = example_arguments(by_name[tool].tool.input_schema)
                    meta = cast(RequestParamsMeta, {REQUEST_REF_META_KEY: f"{identity}:{tool}"})
                    try:
                        await client.call_tool(tool, args, meta=meta)
                    except MCPError:  # a task-only tool: decided and audited, then refused (no tasks)
                        assert by_name[tool].tool.execution is not None, tool

    anyio.run(call_all)
    decided = {
        tuple(r["request_ref"].split(":", 1)): r["effect"]
        for r in rows(
            gw, "SELECT request_ref, effect FROM audit_events WHERE method = 'tools/call' AND phase = 'decision'"
        )
        if r["request_ref"]
    }
    for (identity, tool), effect in expected.items():
        assert decided[(identity, tool)] == effect, f"{identity} {tool}"
    for tool in by_name:  # every tool has a reader case; operators get the readers' tools too
        assert (READER, tool) in expected
        if (OPERATOR, tool) not in expected:
            assert expected[(READER, tool)] == decided[(OPERATOR, tool)] == "allow", tool
    held = {t for (i, t), e in expected.items() if e == "approve"}
    assert {"git__git_reset", "filesystem__write_file", "filesystem__edit_file", "filesystem__move_file"} <= held


def test_held_calls_never_reach_the_upstream_and_allowed_ones_do(
    adopted: tuple[Gateway, dict[str, Any]], five_servers: Path
) -> None:
    gw, _ = adopted
    files = five_servers.parent / "files"
    repo = files / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (files / "notes.txt").write_text("hello")

    async def scenario() -> dict[str, str]:
        out: dict[str, str] = {}
        async with connect(gw, READER) as reader:
            out["read"] = text_of(
                await reader.call_tool("filesystem__read_text_file", {"path": str(files / "notes.txt")})
            )
            out["status"] = text_of(await reader.call_tool("git__git_status", {"repo_path": str(repo)}))
            out["reader-write"] = text_of(
                await reader.call_tool("filesystem__write_file", {"path": str(files / "x.txt"), "content": "x"})
            )
            out["reader-tools"] = ",".join(sorted(t.name for t in (await reader.list_tools()).tools))
        async with connect(gw, OPERATOR) as operator:
            out["mkdir"] = text_of(
                await operator.call_tool("filesystem__create_directory", {"path": str(files / "made")})
            )
            out["write"] = text_of(
                await operator.call_tool("filesystem__write_file", {"path": str(files / "held.txt"), "content": "x"})
            )
            out["reset"] = text_of(await operator.call_tool("git__git_reset", {"repo_path": str(repo)}))
        return out

    out = anyio.run(scenario)
    assert out["read"] == "hello"
    assert "On branch" in out["status"] or "branch" in out["status"].lower()
    assert out["reader-write"].startswith("unknown tool")  # ungranted answers like unknown; audited default-deny
    assert "filesystem__write_file" not in out["reader-tools"] and "git__git_status" in out["reader-tools"]
    assert (files / "made").is_dir()
    assert out["write"].startswith("pending approval") and "filesystem.write_file.approve" in out["write"]
    assert not (files / "held.txt").exists()
    assert out["reset"].startswith("pending approval") and "git.git_reset.approve" in out["reset"]


def test_decision_events_carry_the_tools_risk(adopted: tuple[Gateway, dict[str, Any]], live: list[CatalogTool]) -> None:
    gw, _ = adopted
    labels = {(e.server, e.tool.name): classify(e.tool).label for e in live}

    async def one() -> None:
        async with connect(gw, OPERATOR) as client:
            await client.call_tool("memory__delete_entities", {"entityNames": ["nobody"]})

    anyio.run(one)
    events = rows(gw, "SELECT server, tool, risk, version FROM audit_events WHERE method = 'tools/call'")
    assert events and all(e["risk"] == labels[(e["server"], e["tool"])] for e in events)
    assert {e["version"] for e in events} == {2}
    assert any(e["tool"] == "delete_entities" and e["risk"] == "destructive,writes" for e in events)
    verify = subprocess.run(
        [sys.executable, "-m", "warden", "audit", "verify"],
        env={**os.environ, "WARDEN_DATABASE_URL": gw.database_url},
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
