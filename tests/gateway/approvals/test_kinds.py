"""Approvals bind the request kind (gateway/approvals/store.py): an approval for a prompt get never
releases a resource read or a tool call of the same name and arguments, nor the reverse, in either
scope; another identity never rides one; the API, the CLI and the audit log say which kind it is.

Real gateway (``warden gateway serve``) in front of the twins upstream (tests/gateway/approvals/twins.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tests.gateway.approvals.harness import auth, decide, eventually, rewrite_policy
from tests.gateway.approvals.twins import URI, Kind, attempt, policy, start
from tests.gateway.harness import REPO, Gateway, connect, rows, text_of

pytestmark = pytest.mark.anyio

AGENTS = [
    "pending-agent",
    "granted-agent",
    "reverse-agent",
    "tool-agent",
    "prompt-agent",
    "owner-agent",
    "rider",
    "resumer",
]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with start(tmp_path_factory.mktemp("kinds"), policy(AGENTS), AGENTS) as gateway:
        yield gateway


async def approve(gw: Gateway, approval_id: str) -> dict[str, Any]:
    decided = await decide(gw, approval_id, "approve")
    assert decided.status_code == 200, decided.text
    body: dict[str, Any] = decided.json()
    return body


async def listed(gw: Gateway, approval_id: str, state: str = "all") -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{gw.url}/approvals", params={"state": state}, headers=auth(gw, "alice"))
        r.raise_for_status()
        found = [a for a in r.json() if a["id"] == approval_id]
        return found[0] if found else None

    return await eventually(probe, 15, f"approval {approval_id} in the listing")


# ---- a pending approval of one kind is never joined by another -------------------------------------


async def test_a_read_never_joins_the_pending_approval_of_a_prompt_with_its_name_and_arguments(gw: Gateway) -> None:
    held_prompt = await attempt(gw, "pending-agent", "prompt", URI)
    held_read = await attempt(gw, "pending-agent", "resource", URI)
    assert held_prompt[0] == held_read[0] == "pending"
    assert held_read[1] != held_prompt[1]  # its own approval, not a ride on the prompt's
    prompt_row, read_row = await listed(gw, held_prompt[1]), await listed(gw, held_read[1])
    assert (prompt_row["kind"], read_row["kind"]) == ("prompt", "resource")
    assert prompt_row["tool_name"] == read_row["tool_name"] == URI  # the name alone cannot tell them apart
    assert prompt_row["args_hash"] == read_row["args_hash"]
    await approve(gw, held_read[1])
    assert await attempt(gw, "pending-agent", "prompt", URI) == ("pending", held_prompt[1])
    assert await attempt(gw, "pending-agent", "resource", URI) == ("ran", "resource ran")


# ---- a granted approval of one kind releases only that kind (exact scope) --------------------------


async def test_an_approved_prompt_never_releases_the_read_of_the_same_name_and_arguments(gw: Gateway) -> None:
    state, prompt_id = await attempt(gw, "granted-agent", "prompt", URI)
    assert state == "pending"
    await approve(gw, prompt_id)
    state, read_id = await attempt(gw, "granted-agent", "resource", URI)
    assert state == "pending" and read_id != prompt_id  # the read is held for its own approval
    assert (await listed(gw, prompt_id))["state"] == "approved"  # still there for the prompt
    assert await attempt(gw, "granted-agent", "prompt", URI) == ("ran", f"prompt ran on {URI}")
    assert (await listed(gw, prompt_id))["state"] == "consumed"
    assert (await listed(gw, read_id))["state"] == "pending"


async def test_an_approved_read_never_releases_the_prompt_of_the_same_name_and_arguments(gw: Gateway) -> None:
    state, read_id = await attempt(gw, "reverse-agent", "resource", URI)
    assert state == "pending"
    await approve(gw, read_id)
    state, prompt_id = await attempt(gw, "reverse-agent", "prompt", URI)
    assert state == "pending" and prompt_id != read_id
    assert await attempt(gw, "reverse-agent", "resource", URI) == ("ran", "resource ran")


@pytest.mark.parametrize("name", ["twins__doc", "doc"])
async def test_an_approved_tool_call_never_releases_the_prompt_of_the_same_name_and_arguments(
    gw: Gateway, name: str
) -> None:
    uri = f"tool-first://{name}"
    state, tool_id = await attempt(gw, "tool-agent", "tool", name, uri)
    assert state == "pending"
    await approve(gw, tool_id)
    state, prompt_id = await attempt(gw, "tool-agent", "prompt", name, uri)
    assert state == "pending" and prompt_id != tool_id
    assert (await listed(gw, prompt_id))["kind"] == "prompt"
    assert await attempt(gw, "tool-agent", "tool", name, uri) == ("ran", f"tool ran on {uri}")


@pytest.mark.parametrize("name", ["twins__doc", "doc"])
async def test_an_approved_prompt_never_releases_the_tool_call_of_the_same_name_and_arguments(
    gw: Gateway, name: str
) -> None:
    uri = f"prompt-first://{name}"
    state, prompt_id = await attempt(gw, "prompt-agent", "prompt", name, uri)
    assert state == "pending"
    await approve(gw, prompt_id)
    state, tool_id = await attempt(gw, "prompt-agent", "tool", name, uri)
    assert state == "pending" and tool_id != prompt_id
    assert (await listed(gw, tool_id))["kind"] == "tool"
    hashes = {r["id"]: r["tool_hash"] for r in rows(gw, "SELECT id, tool_hash FROM approvals")}
    assert hashes[prompt_id] and hashes[tool_id] and hashes[prompt_id] != hashes[tool_id]  # each its definition
    assert await attempt(gw, "prompt-agent", "prompt", name, uri) == ("ran", f"prompt ran on {uri}")


# ---- identities, forged ids, what approvers see --------------------------------------------------


async def test_another_identity_never_rides_an_approval_of_the_same_kind_name_and_arguments(gw: Gateway) -> None:
    state, owner_id = await attempt(gw, "owner-agent", "prompt", URI)
    assert state == "pending"
    state, rider_id = await attempt(gw, "rider", "prompt", URI)
    assert state == "pending" and rider_id != owner_id  # not the owner's pending approval either
    await approve(gw, owner_id)
    assert await attempt(gw, "rider", "prompt", URI) == ("pending", rider_id)
    assert await attempt(gw, "owner-agent", "prompt", URI) == ("ran", f"prompt ran on {URI}")


async def test_a_request_state_naming_another_kinds_approval_releases_nothing(gw: Gateway) -> None:
    """A 2026-07-28 client's requestState only says which approval link it already has: echoing the id of
    an approved prompt (or a made-up one) on a tool call or a read of the same name runs neither."""
    state, prompt_id = await attempt(gw, "resumer", "prompt", "twins__doc", "resumed://x")
    assert state == "pending"
    await approve(gw, prompt_id)
    flat_state, flat_prompt_id = await attempt(gw, "resumer", "prompt", URI)
    assert flat_state == "pending"
    await approve(gw, flat_prompt_id)
    async with connect(gw, "resumer") as client:
        assert client.protocol_version == "2026-07-28"
        for borrowed in (prompt_id, "apr_000000000000"):
            tool = await client.call_tool("twins__doc", {"uri": "resumed://x"}, request_state=borrowed)
            assert _pending(text_of(tool)) not in (prompt_id, flat_prompt_id)
            with pytest.raises(MCPError) as read:
                await client.read_resource(URI, request_state=flat_prompt_id if borrowed == prompt_id else borrowed)
            assert _pending(read.value.error.message) not in (prompt_id, flat_prompt_id)
    assert (await listed(gw, prompt_id))["state"] == (await listed(gw, flat_prompt_id))["state"] == "approved"
    assert await attempt(gw, "resumer", "prompt", "twins__doc", "resumed://x") == ("ran", "prompt ran on resumed://x")


def _pending(message: str) -> str:
    assert message.startswith("pending approval "), message
    return message.split()[2].rstrip(":")


FORGED = ["apr_000000000000", "apr_zzzzzzzzzzzz", "apr_' OR '1'='1", "..%2F..%2Fadmin", "%00", "APR_X"]


async def test_a_forged_approval_id_is_refused_by_every_route(gw: Gateway) -> None:
    async with httpx.AsyncClient() as http:
        for forged in FORGED:
            for method, path in (
                ("GET", f"/approvals/{forged}"),
                ("POST", f"/approvals/{forged}/approve"),
                ("POST", f"/approvals/{forged}/deny"),
            ):
                body = {"reason": "forged"} if method == "POST" else None
                r = await http.request(method, f"{gw.url}{path}", json=body, headers=auth(gw, "alice"))
                assert r.status_code == 404, (method, path, r.status_code, r.text)
                assert "Traceback" not in r.text and "SQL" not in r.text
            shown = warden(gw, "show", forged)
            assert shown.returncode == 1 and "no approval" in shown.stderr
            decided = warden(gw, "approve", forged, "--as", "alice", "-r", "forged")
            assert decided.returncode == 1 and "no approval" in decided.stderr
    assert not rows(gw, "SELECT * FROM audit_events WHERE method = 'approvals/decide' AND reason = 'forged'")


async def test_the_api_the_cli_and_the_audit_log_say_which_kind_an_approval_is(gw: Gateway) -> None:
    held = {kind: await attempt(gw, "owner-agent", kind, name, f"shown://{kind}") for kind, name in _SHOWN}
    held["resource"] = await attempt(gw, "owner-agent", "resource", URI)
    for kind, (state, approval_id) in held.items():
        assert state == "pending"
        assert (await listed(gw, approval_id, "pending"))["kind"] == kind
        shown = warden(gw, "show", approval_id)
        assert json.loads(shown.stdout)["kind"] == kind
    table = warden(gw, "list").stdout
    for kind, (_, approval_id) in held.items():
        line = next(line for line in table.splitlines() if approval_id in line)
        assert _LABELS[kind] in line, line
    await approve(gw, held["prompt"][1])
    decided = rows(
        gw, "SELECT * FROM audit_events WHERE approval_id = :id AND method = 'approvals/decide'", id=held["prompt"][1]
    )
    assert [json.loads(e["arguments"]) for e in decided] == [{"kind": "prompt"}]


_SHOWN: list[tuple[Kind, str]] = [("tool", "twins__doc"), ("prompt", "twins__doc")]
_LABELS = {"tool": "tool call", "prompt": "prompt", "resource": "resource read"}


def warden(gw: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WARDEN_DATABASE_URL": gw.database_url, "WARDEN_POLICY_DIR": str(gw.policy_dir)}
    return subprocess.run(
        [sys.executable, "-m", "warden", "approvals", *args],
        cwd=REPO,
        env={**env, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ---- tool scope: a rule id that changes kind does not carry its granted approvals over ------------


async def test_a_tool_scoped_approval_never_covers_another_kind_even_under_the_same_rule_id(tmp_path: Path) -> None:
    """A granted ``scope: tool`` approval is matched on its rule ids: if an operator turns the prompt
    rule ``hold-twin`` into a resource rule of the same id, the granted prompt approval must not cover
    the read of the same name."""
    scoped = "\n    scope: {match: tool, ttl_s: 600}"
    text = policy(["agent"], prompt_scope=scoped).replace("hold-prompts", "hold-twin")
    with start(tmp_path, text, ["agent"]) as gw:
        state, prompt_id = await attempt(gw, "agent", "prompt", URI)
        assert state == "pending"
        await approve(gw, prompt_id)
        assert await attempt(gw, "agent", "prompt", URI, "any://other") == ("ran", "prompt ran on any://other")
        await rewrite_policy(gw, policy(["agent"], read_scope=scoped).replace("hold-reads", "hold-twin"))
        state, read_id = await attempt(gw, "agent", "resource", URI)
        assert state == "pending" and read_id != prompt_id
        assert (await listed(gw, read_id))["kind"] == "resource"
        assert rows(gw, "SELECT kind FROM approvals WHERE id = :id", id=prompt_id) == [{"kind": "prompt"}]


# ---- a prompt reworded while its get is held is not run by the approval ------------------------------


async def test_a_prompt_reworded_while_its_get_is_held_is_refused_on_release(tmp_path: Path) -> None:
    text = policy(["holder"]).replace('grants: ["doc", "twins__doc"]', 'grants: ["doc", "twins__doc", "twins__reword"]')
    env = {"WARDEN_APPROVAL_HOLD_S": "60", "WARDEN_UPSTREAM_PROBE_INTERVAL_S": "0.2"}
    with start(tmp_path, text, ["holder"], **env) as held_gw:
        box: dict[str, Any] = {}

        async def agent() -> None:
            async with connect(held_gw, "holder") as client:
                try:
                    box["got"] = await client.get_prompt("twins__doc", {"uri": URI})
                except MCPError as exc:
                    box["error"] = exc.error.message

        async def pending() -> dict[str, Any] | None:
            found = rows(held_gw, "SELECT * FROM approvals WHERE state = 'pending' AND kind = 'prompt'")
            return found[0] if found else None

        async def reworded() -> bool | None:
            async with connect(held_gw, "holder") as client:
                prompts = (await client.list_prompts()).prompts
            return True if any("evil@" in (p.description or "") for p in prompts) else None

        async with anyio.create_task_group() as tg:
            tg.start_soon(agent)
            held = await eventually(pending, 20, "the held prompt get's approval")
            async with connect(held_gw, "holder") as client:
                assert text_of(await client.call_tool("twins__reword", {})) == "prompt doc reworded"
            await eventually(reworded, 20, "the gateway to list the reworded prompt")
            await approve(held_gw, held["id"])
        assert "got" not in box, "the approval ran a prompt the approver never saw"
        assert "changed while the call waited" in box["error"], box["error"]
        query = "SELECT * FROM audit_events WHERE approval_id = :id AND phase = 'outcome'"
        outcome = rows(held_gw, query, id=held["id"])
        assert [(o["outcome"], json.loads(o["rule_ids"])) for o in outcome] == [("denied", ["prompt-changed"])]
