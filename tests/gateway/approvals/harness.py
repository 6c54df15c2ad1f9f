"""The approval flow tests' shared setup (tests/gateway/test_approvals_*.py): the policy, a
gateway started on it, and the steps an agent and an approver take. Waiting is on conditions
with timeouts, never on sleeps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import anyio
import httpx
import mcp_types as types

from tests.gateway.harness import Gateway, connect, metric, rows, text_of

IDENTITIES = ["writer-agent", "lead-agent", "alice", "bob"]
POLICY = """
identities:
  writer-agent: {roles: [writer]}
  lead-agent: {roles: [writer, approver]}
  alice: {roles: [approver]}
  bob: {roles: [auditor]}
roles:
  writer: {grants: ["notes__*", "time__*"]}
  approver: {}
  auditor: {}
rules:
  - id: approve-publish
    effect: approve
    tools: [notes__add_note]
    when: 'args.title.startsWith("publish")'
    reason: publishing needs a human
    approvers: [approver]
  - id: approve-echo-for-a-while
    effect: approve
    tools: [notes__echo]
    reason: echoes are reviewed once, then allowed for ten minutes
    approvers: [approver]
    scope: {match: tool, ttl_s: 600}
redact:
  - tools: ["notes__add_note"]
    fields: ["secret"]
"""
WEBHOOK_SECRET = "whsec-test-0123456789"
FAST = {"WARDEN_APPROVAL_POLL_S": "0.1", "WARDEN_APPROVAL_TTL_S": "120"}

T = TypeVar("T")


class StartGateway(Protocol):
    """Starts a gateway on ``POLICY`` with keys for ``identities`` (``env``: extra WARDEN_* settings)."""

    def __call__(self, identities: list[str], **env: str) -> AbstractContextManager[Gateway]: ...


def auth(gw: Gateway, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.keys[who]}"}


async def eventually(probe: Callable[[], Awaitable[T | None]], within_s: float, what: str) -> T:
    """Re-check `probe` until it returns a value; fail after `within_s` seconds."""
    try:
        with anyio.fail_after(within_s):
            while True:
                value = await probe()
                if value is not None:
                    return value
                await anyio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {within_s}s waiting for {what}") from None


async def pending_for(gw: Gateway, title: str, within_s: float = 15) -> dict[str, Any]:
    """The pending approval (as alice sees it over REST) of the add_note call with this title."""

    async def probe() -> dict[str, Any] | None:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"{gw.url}/approvals", headers=auth(gw, "alice"))
        r.raise_for_status()
        found = [a for a in r.json() if a["arguments"].get("title") == title]
        return found[0] if found else None

    return await eventually(probe, within_s, f"a pending approval for {title!r}")


async def decide(gw: Gateway, approval_id: str, verdict: str, who: str = "alice", reason: str = "ok") -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{gw.url}/approvals/{approval_id}/{verdict}", json={"reason": reason}, headers=auth(gw, who)
        )


async def call(gw: Gateway, who: str, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
    async with connect(gw, who) as client:
        return await client.call_tool(tool, arguments)


def pending_id(result: types.CallToolResult) -> str:
    message = text_of(result)
    assert result.is_error and message.startswith("pending approval "), message
    return message.split()[2].rstrip(":")


def approval_row(gw: Gateway, approval_id: str) -> dict[str, Any]:
    return rows(gw, "SELECT * FROM approvals WHERE id = :id", id=approval_id)[0]


def audit_of(gw: Gateway, approval_id: str) -> list[tuple[Any, ...]]:
    found = rows(gw, "SELECT * FROM audit_events WHERE approval_id = :id ORDER BY seq", id=approval_id)
    return [(r["method"], r["phase"], r["identity"], r["effect"], r["outcome"]) for r in found]


async def notes_titled(gw: Gateway, title: str) -> int:
    async with connect(gw, "writer-agent") as client:
        listed = await client.call_tool("notes__list_notes", {})
    return sum(1 for note in (listed.structured_content or {}).get("result", []) if note["title"] == title)


async def rewrite_policy(gw: Gateway, text: str, within_s: float = 20) -> None:
    """Write the gateway's policy file and wait until the gateway has reloaded it (its reloads metric)."""
    before = _reloads(gw)
    (gw.policy_dir / "policy.yaml").write_text(text)

    async def reloaded() -> bool | None:
        return True if _reloads(gw) > before else None

    await eventually(reloaded, within_s, "the policy to reload")


def _reloads(gw: Gateway) -> float:
    return metric(gw, 'warden_policy_reloads_total{result="ok"}')
