"""A held call is re-authenticated and re-decided when its approval releases it: a key revoked,
or an emergency deny rule hot-loaded, during the hold stops it (real gateway, real upstream)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from gateway.db import create_db_engine
from gateway.identities import IdentityStore
from tests.gateway.approvals.harness import FAST, POLICY, call, decide, pending_for, rewrite_policy
from tests.gateway.harness import Gateway, NotesUpstream, connect, rows, run_gateway, text_of, upstreams_yaml

pytestmark = pytest.mark.anyio

RELEASE_POLICY = POLICY.replace(
    "  bob: {roles: [auditor]}",
    "  bob: {roles: [auditor]}\n  temp-agent: {roles: [writer]}\n  shifty-agent: {roles: [writer]}",
)
EMERGENCY_RULE = """
  - id: emergency-stop-publish
    effect: deny
    tools: [notes__add_note]
    when: 'args.title.startsWith("publish emergency")'
    reason: publishing is stopped while we investigate
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("release")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(RELEASE_POLICY)
    identities = ["writer-agent", "temp-agent", "shifty-agent", "alice"]
    with run_gateway(tmp, policy_dir, upstreams_yaml(notes.url), identities, **FAST, WARDEN_APPROVAL_HOLD_S="30") as g:
        yield g


@asynccontextmanager
async def held(gw: Gateway, who: str, title: str) -> AsyncIterator[dict[str, Any]]:
    box: dict[str, Any] = {}

    async def run() -> None:
        box["result"] = await call(gw, who, "notes__add_note", {"title": title, "body": "b"})

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        yield box


async def stored(gw: Gateway, title: str) -> int:
    async with connect(gw, "writer-agent") as client:
        listed = await client.call_tool("notes__list_notes", {})
    return sum(1 for note in (listed.structured_content or {}).get("result", []) if note["title"] == title)


def outcome_of(gw: Gateway, approval_id: str) -> dict[str, Any]:
    found = rows(gw, "SELECT * FROM audit_events WHERE approval_id = :id AND phase = 'outcome'", id=approval_id)
    assert len(found) == 1, found
    return found[0]


async def test_a_key_revoked_during_the_hold_stops_the_approved_call(gw: Gateway) -> None:
    async with held(gw, "temp-agent", "publish after-revoke") as box:
        approval = await pending_for(gw, "publish after-revoke")
        engine = create_db_engine(gw.database_url)
        assert IdentityStore(engine).revoke("temp-agent") == 1
        engine.dispose()
        assert (await decide(gw, approval["id"], "approve")).status_code == 200
    result = box["result"]
    assert result.is_error and "revoked" in text_of(result) and "did not run" in text_of(result)
    assert "Error" not in text_of(result) and "SQL" not in text_of(result)
    assert await stored(gw, "publish after-revoke") == 0
    outcome = outcome_of(gw, approval["id"])
    assert (outcome["effect"], outcome["outcome"], json.loads(outcome["rule_ids"])) == (
        "deny",
        "denied",
        ["revoked-key"],
    )


async def test_a_deny_rule_hot_loaded_during_the_hold_wins_over_the_approval(gw: Gateway) -> None:
    policy = gw.policy_dir / "policy.yaml"
    async with held(gw, "writer-agent", "publish emergency fix") as box:
        approval = await pending_for(gw, "publish emergency fix")
        await rewrite_policy(gw, policy.read_text().replace("rules:\n", "rules:\n" + EMERGENCY_RULE.lstrip("\n"), 1))
        assert (await decide(gw, approval["id"], "approve")).status_code == 200
    result = box["result"]
    assert result.is_error and "emergency-stop-publish" in text_of(result) and "did not run" in text_of(result)
    assert await stored(gw, "publish emergency fix") == 0
    outcome = outcome_of(gw, approval["id"])
    assert (outcome["effect"], json.loads(outcome["rule_ids"])) == ("deny", ["emergency-stop-publish"])
    # the rule is narrow: another held publish still runs once approved
    async with held(gw, "writer-agent", "publish routine") as box:
        other = await pending_for(gw, "publish routine")
        assert (await decide(gw, other["id"], "approve")).status_code == 200
    assert not box["result"].is_error, text_of(box["result"])
    assert await stored(gw, "publish routine") == 1


async def test_a_grant_withdrawn_during_the_hold_stops_the_approved_call(gw: Gateway) -> None:
    policy = gw.policy_dir / "policy.yaml"
    async with held(gw, "shifty-agent", "publish withdrawn") as box:
        approval = await pending_for(gw, "publish withdrawn")
        withdrawn = policy.read_text().replace("shifty-agent: {roles: [writer]}", "shifty-agent: {roles: []}")
        await rewrite_policy(gw, withdrawn)
        assert (await decide(gw, approval["id"], "approve")).status_code == 200
    result = box["result"]
    assert result.is_error and "no longer granted" in text_of(result) and "did not run" in text_of(result)
    assert await stored(gw, "publish withdrawn") == 0
    assert json.loads(outcome_of(gw, approval["id"])["rule_ids"]) == ["default-deny"]
