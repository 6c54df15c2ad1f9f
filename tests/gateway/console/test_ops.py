"""Operations pages in a real browser: upstream health, an identity created (its key shown once,
working on the API) and revoked (then refused), the live policy explained; admins only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.console.browser import csrf_of, shoot, sign_in
from tests.gateway.harness import Gateway, rows

pytestmark = pytest.mark.anyio


async def _api_status(gw: Gateway, key: str) -> int:
    async with httpx.AsyncClient(base_url=gw.url) as http:
        return (await http.get("/approvals", headers={"Authorization": f"Bearer {key}"})).status_code


async def test_an_admin_sees_upstreams_and_creates_and_revokes_an_identity(gateway: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gateway, "root", "/console/ops")
    upstreams = await page.locator("#upstreams tbody tr").all_text_contents()
    assert any("time" in u and "ready" in u for u in upstreams) and any("notes" in u for u in upstreams)
    await page.fill("#new-identity", "carol")
    await page.click("#create-identity")
    await page.wait_for_load_state()
    key = (await page.text_content("#new-key pre") or "").strip()
    assert key.startswith("wdn_")
    await shoot(page, "operations")
    assert await _api_status(gateway, key) == 200  # the new key works on the API
    await page.goto(f"{gateway.url}/console/ops")
    assert key not in await page.content()  # shown once, never again
    row = page.locator("#identities tr", has_text="carol")
    await row.get_by_role("button", name="Revoke").click()
    await page.wait_for_load_state()
    assert await page.locator("#identities tr", has_text="carol").count() == 0
    assert await _api_status(gateway, key) == 401
    audited = rows(gateway, "SELECT tool FROM audit_events WHERE method = 'console/identity' AND identity = 'root'")
    assert [r["tool"] for r in audited] == ["create", "revoke"]


async def test_explain_shows_the_decision_and_the_rules(gateway: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gateway, "root", "/console/ops")
    await page.fill("#x-identity", "writer-agent")
    await page.fill("#x-tool", "notes__add_note")
    await page.fill("#x-args", '{"title": "publish it"}')
    await page.click("#explain-button")
    await page.wait_for_load_state()
    assert await page.text_content("#x-decision") == "approve"
    assert "approve-publish" in (await page.text_content("#explanation") or "")
    await page.fill("#x-args", "not json")
    await page.click("#explain-button")
    await page.wait_for_load_state()
    assert "not JSON" in await page.content()


async def test_a_non_admin_gets_no_operations_and_cannot_forge_a_key(gateway: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gateway, "bob", "/console/ops")
    assert "does not hold the 'admin' role" in (await page.text_content("#error") or "")
    forged = await page.request.post(
        f"{gateway.url}/console/ops/identities", form={"name": "mallory", "csrf": await csrf_of(page)}
    )
    assert forged.status == 403
    assert rows(gateway, "SELECT id FROM identities WHERE name = 'mallory'") == []
