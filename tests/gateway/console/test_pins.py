"""Tool definitions waiting for acceptance, in a real browser: a tool added upstream shows up as
pending on the Operations page, an admin accepts it and the agent can list and call it at once;
a changed definition shows what changed, a non-admin gets no buttons and a forged decision is
refused; the pure view of a change names the risk class change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.console.pins import pin_view
from gateway.models import ToolPinPublic
from tests.gateway.approvals.harness import call, eventually, pending_id
from tests.gateway.console.browser import csrf_of, shoot, sign_in
from tests.gateway.console.conftest import IDENTITIES, POLICY
from tests.gateway.harness import Gateway, NotesUpstream, connect, rows, run_gateway, text_of, upstreams_yaml

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> Iterator[Gateway]:
    """The console's gateway, probing its upstreams often so that a changed tool list is seen soon."""
    policy_dir = tmp_path_factory.mktemp("pins-policy")
    (policy_dir / "policy.yaml").write_text(POLICY)
    env = {
        "WARDEN_APPROVAL_HOLD_S": "1",
        "WARDEN_APPROVAL_POLL_S": "0.1",
        "WARDEN_APPROVAL_TTL_S": "600",
        "WARDEN_UPSTREAM_PROBE_INTERVAL_S": "0.3",
        "WARDEN_TOOL_PINS_POLL_S": "0.2",
    }
    with run_gateway(tmp_path_factory.mktemp("gw"), policy_dir, upstreams_yaml(notes.url), IDENTITIES, **env) as gw:
        yield gw


def change(notes: NotesUpstream, action: str) -> None:
    httpx.post(f"http://127.0.0.1:{notes.port}/control/{action}").raise_for_status()


async def pending_pin(gw: Gateway, tool: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = rows(gw, "SELECT * FROM tool_pins WHERE tool = :t AND state = 'pending'", t=tool)
        return found[0] if found else None

    return await eventually(probe, 30, f"a pending pin for {tool}")


async def listed(gw: Gateway) -> list[str]:
    async with connect(gw, "writer-agent") as client:
        return [tool.name for tool in (await client.list_tools()).tools]


async def test_a_new_tool_waits_in_the_console_until_an_admin_accepts_it(
    gateway: Gateway, notes: NotesUpstream, browser: Any
) -> None:
    change(notes, "add-tool")
    pin = await pending_pin(gateway, "export_notes")
    assert "notes__export_notes" not in await listed(gateway)
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gateway, "root", "/console/ops")
    card = page.locator(f".pin[data-pin='{pin['id']}']")
    assert await card.get_attribute("data-tool") == "notes/export_notes"
    assert await card.locator(".pin-kind").text_content() == "new"
    assert "Export every note to a destination." in (await card.locator(".definition pre").text_content() or "")
    assert await card.locator(".risk").first.text_content() == "writes"
    tool_row = page.locator("#tools tr[data-tool='notes__export_notes']")
    assert "no: waiting" in (await tool_row.text_content() or "")
    deleting = page.locator("#tools tr[data-tool='notes__delete_note'] .risk").first
    assert await deleting.text_content() == "destructive" and "verb 'delete'" in (
        await deleting.get_attribute("title") or ""
    )
    await shoot(page, "ops-tool-pending")
    await card.get_by_role("button", name="Accept").click()
    await page.wait_for_url("**/console/ops#tool-pins")
    assert await page.locator(f".pin[data-pin='{pin['id']}']").count() == 0
    assert await page.locator("#tools tr[data-tool='notes__export_notes'] td.ok").text_content() == "yes"
    await shoot(page, "ops-tools-risk")
    assert "notes__export_notes" in await listed(gateway)  # at once: the console applies it like the API
    async with connect(gateway, "writer-agent") as client:
        ran = await client.call_tool("notes__export_notes", {"destination": "/tmp/x"})
    assert not ran.is_error and "exported" in text_of(ran), text_of(ran)
    decided = rows(gateway, "SELECT * FROM audit_events WHERE method = 'tools/accept'")
    assert [(a["identity"], a["effect"], a["tool"], json.loads(a["rule_ids"])) for a in decided] == [
        ("root", "allow", "export_notes", [f"tool-pin:{pin['id']}"])
    ]
    assert rows(gateway, "SELECT state, decided_by FROM tool_pins WHERE id = :i", i=pin["id"]) == [
        {"state": "accepted", "decided_by": "root"}
    ]


async def test_a_changed_definition_shows_what_changed_and_only_an_admin_decides_it(
    gateway: Gateway, notes: NotesUpstream, browser: Any
) -> None:
    approval_id = pending_id(await call(gateway, "writer-agent", "notes__add_note", {"title": "publish", "body": "b"}))
    change(notes, "redefine")  # the rug pull, under a held call
    pin = await pending_pin(gateway, "add_note")
    root = await (await browser.new_context()).new_page()
    await sign_in(root, gateway, "root", "/console/ops")
    card = root.locator(f".pin[data-pin='{pin['id']}']")
    assert await card.locator(".pin-kind").text_content() == "changed"
    changed = {
        (await r.locator("td").first.text_content() or ""): await r.text_content() or ""
        for r in await card.locator(".changes tbody tr").all()
    }
    assert {"description", "inputSchema"} <= set(changed) and "id_rsa" in changed["description"]
    assert "cc" in changed["inputSchema"] and "name" not in changed
    shift = await card.locator(".risk-change").text_content() or ""
    assert "handles-secrets,writes -> writes" in shift and "lost handles-secrets" in shift  # its `secret` is gone
    await shoot(root, "ops-tool-changed")
    await root.goto(f"{gateway.url}/console/approvals/{approval_id}")
    assert "definition changed since the call was held" in (await root.text_content("#risk-changed") or "")

    bob = await (await browser.new_context()).new_page()
    await sign_in(bob, gateway, "bob", "/console/ops")
    assert "does not hold the 'admin' role" in (await bob.text_content("#error") or "")
    assert await bob.locator(".pin").count() == 0 and await bob.get_by_role("button", name="Accept").count() == 0
    decide = f"{gateway.url}/console/ops/tools/{pin['id']}/decide"
    forged = await bob.request.post(decide, form={"verdict": "accept", "csrf": await csrf_of(bob)})
    assert forged.status == 403 and "admin" in await forged.text()
    no_csrf = await root.request.post(decide, form={"verdict": "accept"})
    assert no_csrf.status == 403 and "CSRF" in await no_csrf.text()
    bobs_token = await root.request.post(decide, form={"verdict": "accept", "csrf": await csrf_of(bob)})
    assert bobs_token.status == 403 and "CSRF" in await bobs_token.text()
    unknown = await root.request.post(
        f"{gateway.url}/console/ops/tools/999999/decide", form={"verdict": "accept", "csrf": await csrf_of(root)}
    )
    assert unknown.status == 404 and "no pending tool definition" in await unknown.text()
    assert rows(gateway, "SELECT state FROM tool_pins WHERE id = :i", i=pin["id"]) == [{"state": "pending"}]
    decisions = rows(gateway, "SELECT tool FROM audit_events WHERE method IN ('tools/accept', 'tools/reject')")
    assert decisions == [{"tool": "export_notes"}]  # the first test's only: nothing refused here was decided

    await root.goto(f"{gateway.url}/console/ops")
    await root.locator(f".pin[data-pin='{pin['id']}']").get_by_role("button", name="Reject").click()
    await root.wait_for_url("**/console/ops#tool-pins")
    assert rows(gateway, "SELECT state, decided_by FROM tool_pins WHERE id = :i", i=pin["id"]) == [
        {"state": "rejected", "decided_by": "root"}
    ]
    assert "notes__add_note" not in await listed(gateway)  # rejected: it stays hidden
    rejected = rows(gateway, "SELECT identity, effect, tool FROM audit_events WHERE method = 'tools/reject'")
    assert rejected == [{"identity": "root", "effect": "deny", "tool": "add_note"}]


def _pin(pin_id: int, definition: dict[str, Any], state: str = "pending") -> ToolPinPublic:
    now = datetime.now(UTC)
    return ToolPinPublic.model_validate(
        {"id": pin_id, "server": "s", "tool": "t", "hash": f"h{pin_id}", "kind": "changed", "first_seen_at": now}
        | {"definition": definition, "state": state}
    )


def test_a_changed_definition_names_its_risk_class_change() -> None:
    schema = {"type": "object", "properties": {"path": {"type": "string"}}}
    before = {"name": "read_file", "inputSchema": schema, "annotations": {"readOnlyHint": True}}
    after = {**before, "description": "Read a file, or delete it.", "annotations": {"readOnlyHint": False}}
    view = pin_view(_pin(2, after), _pin(1, before, "accepted"))
    assert [c["field"] for c in view["changes"]] == ["annotations", "description"]
    assert view["changes"][1] == {"field": "description", "before": None, "after": "Read a file, or delete it."}
    assert view["risk_change"].startswith("risk of read_file changed: read-only -> destructive")
    assert view["risk"]["level"] == "destructive"
    first_sight = pin_view(_pin(3, before), None)
    assert "changes" not in first_sight and first_sight["risk"]["label"] == "read-only"
    assert pin_view(_pin(4, {"name": 5}), None)["risk"] is None  # not a readable definition: no class claimed
