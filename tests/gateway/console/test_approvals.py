"""The approvals inbox in a real browser: an agent's call is held, an approver signs in from the
approval link, sees it, approves it, and the agent's retry runs; a person who may not decide sees
no button, and a forged decision is refused for its CSRF token and for its role; the inbox and the
approval page say which kind of request is held (tool call, prompt get, resource read)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.approvals.harness import approval_row, call, pending_id
from tests.gateway.approvals.twins import URI, attempt, policy, start
from tests.gateway.console.browser import csrf_of, shoot, sign_in
from tests.gateway.harness import Gateway, text_of

pytestmark = pytest.mark.anyio


async def held(gw: Gateway, title: str, who: str = "writer-agent", **extra: str) -> str:
    """An agent's add_note call held for approval (answered pending after the hold); its approval id."""
    result = await call(gw, who, "notes__add_note", {"title": title, "body": "b", **extra})
    return pending_id(result)


async def test_approver_opens_the_link_signs_in_and_approves_then_the_retry_runs(
    gateway: Gateway, browser: Any
) -> None:
    approval_id = await held(gateway, "publish from the console", secret="hunter2")
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gateway, "alice", f"/approvals/{approval_id}")  # the link an elicitation shows
    assert page.url == f"{gateway.url}/console/approvals/{approval_id}"
    assert await page.text_content("#requester") == "writer-agent"
    shown = json.loads(await page.text_content("#arguments") or "")
    assert shown["title"] == "publish from the console" and shown["secret"] != "hunter2"  # redacted
    assert "hunter2" not in await page.content()
    risk = page.locator("#risk .risk").first
    assert await risk.text_content() == "handles-secrets,writes"  # the held call's tool, classified
    assert "schema: parameter 'secret'" in (await risk.get_attribute("title") or "")  # its evidence, on hover
    await page.click("#risk summary")
    assert "-> writes" in (await page.text_content("#risk .evidence") or "")
    await shoot(page, "approval")
    await page.goto(f"{gateway.url}/console/approvals")
    row = page.locator(f"tr.approval[data-id='{approval_id}']")
    assert "notes__add_note" in (await row.text_content() or "")
    assert "approve-publish" in (await row.text_content() or "")
    assert await row.locator(".risk-cell .risk").text_content() == "handles-secrets,writes"
    await shoot(page, "approvals-inbox")
    await row.get_by_role("link", name="Decide").click()
    await page.fill("#reason", "looks right to me")
    await page.click("#approve")
    await page.wait_for_url(f"**/console/approvals/{approval_id}")
    assert await page.text_content("#state") == "approved"
    assert "alice" in (await page.text_content("#decided") or "")
    retry = await call(
        gateway,
        "writer-agent",
        "notes__add_note",
        {"title": "publish from the console", "body": "b", "secret": "hunter2"},
    )
    assert not retry.is_error, text_of(retry)
    assert json.loads(text_of(retry))["title"] == "publish from the console"
    await page.goto(f"{gateway.url}/console/approvals")
    assert "looks right to me" in (await page.locator("#recent tr", has_text=approval_id).text_content() or "")
    row_now = approval_row(gateway, approval_id)
    assert (row_now["state"], row_now["decided_by"], row_now["decided_reason"]) == (
        "consumed",
        "alice",
        "looks right to me",
    )


async def test_the_inbox_shows_a_new_held_call_without_a_reload(gateway: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gateway, "alice")
    marker = await page.evaluate("() => (window.__marker = 'same page')")
    approval_id = await held(gateway, "publish live")
    await page.locator(f"tr.approval[data-id='{approval_id}']").wait_for()
    assert await page.evaluate("() => window.__marker") == marker  # the row came by polling, not a reload


async def test_a_person_without_the_approver_role_sees_no_button_and_a_forged_post_is_refused(
    gateway: Gateway, browser: Any
) -> None:
    approval_id = await held(gateway, "publish forged")
    bob = await (await browser.new_context()).new_page()
    await sign_in(bob, gateway, "bob", f"/approvals/{approval_id}")
    assert await bob.locator("#approve").count() == 0
    assert "neither requested nor may decide" in (await bob.text_content("#error") or "")
    await shoot(bob, "approval-forbidden")
    decide = f"{gateway.url}/console/approvals/{approval_id}/decide"
    no_csrf = await bob.request.post(decide, form={"verdict": "approve", "reason": "forged"})
    assert no_csrf.status == 403 and "CSRF" in await no_csrf.text()
    with_csrf = await bob.request.post(decide, form={"verdict": "approve", "reason": "x", "csrf": await csrf_of(bob)})
    assert with_csrf.status == 403 and "needs one of the roles" in await with_csrf.text()
    alice = await (await browser.new_context()).new_page()
    await sign_in(alice, gateway, "alice")
    other_csrf = await alice.request.post(
        decide, form={"verdict": "approve", "reason": "x", "csrf": await csrf_of(bob)}
    )
    assert other_csrf.status == 403 and "CSRF" in await other_csrf.text()  # another session's token is no good
    async with httpx.AsyncClient() as http:  # a cross-site form: SameSite keeps the cookie home
        cross_site = await http.post(decide, data={"verdict": "approve", "reason": "x", "csrf": await csrf_of(alice)})
    assert cross_site.status_code == 303 and "/console/login" in cross_site.headers["location"]  # no cookie
    assert approval_row(gateway, approval_id)["state"] == "pending"


async def test_nobody_approves_their_own_call_in_the_console(gateway: Gateway, browser: Any) -> None:
    approval_id = await held(gateway, "publish my own", who="lead")
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gateway, "lead", f"/approvals/{approval_id}")
    assert await page.text_content("#requester") == "lead"  # the requester may look at it ...
    assert await page.locator("#approve").count() == 0  # ... but gets no button
    assert "cannot decide its own approval" in (await page.text_content("#why-not") or "")
    decide = f"{gateway.url}/console/approvals/{approval_id}/decide"
    forged = await page.request.post(decide, form={"verdict": "approve", "reason": "me", "csrf": await csrf_of(page)})
    assert forged.status == 403 and "own approval" in await forged.text()
    assert approval_row(gateway, approval_id)["state"] == "pending"


async def test_an_agent_key_opens_no_console_session(gateway: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gateway, "writer-agent")
    assert "/console/login" in page.url
    assert "holds none of the console roles" in (await page.text_content(".error") or "")


async def test_api_clients_keep_the_json_api_at_the_approval_link(gateway: Gateway) -> None:
    approval_id = await held(gateway, "publish via api")
    link = f"{gateway.url}/approvals/{approval_id}"
    key = {"Authorization": f"Bearer {gateway.keys['alice']}"}
    async with httpx.AsyncClient() as http:
        as_api = await http.get(link, headers={**key, "Accept": "text/html,application/json"})
        as_browser = await http.get(link, headers={"Accept": "text/html"})
        key_on_page = await http.get(f"{gateway.url}/console/approvals/{approval_id}", headers=key)
    assert as_api.status_code == 200 and as_api.json()["id"] == approval_id
    assert as_browser.status_code == 303 and as_browser.headers["location"] == f"/console/approvals/{approval_id}"
    assert key_on_page.status_code == 303 and "/console/login" in key_on_page.headers["location"]  # keys open no page


@pytest.fixture(scope="module")
def twins_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway in front of the twins upstream: a tool, prompts and a resource that share names."""
    with start(tmp_path_factory.mktemp("console-twins"), policy(["agent"]), ["agent"]) as gw:
        yield gw


async def test_the_inbox_and_the_approval_page_say_which_kind_of_request_is_held(
    twins_gateway: Gateway, browser: Any
) -> None:
    gw = twins_gateway
    held = {
        "tool call": await attempt(gw, "agent", "tool", "twins__doc", "shown://x"),
        "prompt get": await attempt(gw, "agent", "prompt", "twins__doc", "shown://x"),
        "resource read": await attempt(gw, "agent", "resource", URI),
    }
    assert {state for state, _ in held.values()} == {"pending"}
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gw, "alice")
    for label, (_, approval_id) in held.items():
        row = page.locator(f"tr.approval[data-id='{approval_id}']")
        assert await row.locator(".kind").text_content() == label
    prompt_row = page.locator(f"tr.approval[data-id='{held['prompt get'][1]}']")
    assert "twins__doc" in (await prompt_row.text_content() or "")
    assert await prompt_row.locator(".risk-cell").text_content() == "not a tool call"  # not the tool's risk
    tool_row = page.locator(f"tr.approval[data-id='{held['tool call'][1]}']")
    assert await tool_row.locator(".risk-cell .risk").count() == 1
    await page.goto(f"{gw.url}/console/approvals/{held['prompt get'][1]}")
    assert await page.text_content("#kind") == "prompt get"
    assert await page.locator("#risk").count() == 0
    await page.goto(f"{gw.url}/console/approvals/{held['resource read'][1]}")
    assert await page.text_content("#kind") == "resource read"
    assert "twin://doc" in (await page.text_content("#name") or "")


async def test_a_forged_approval_id_is_refused_by_the_console(twins_gateway: Gateway, browser: Any) -> None:
    gw = twins_gateway
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gw, "alice")
    csrf = await csrf_of(page)
    for forged in ("apr_000000000000", "apr_' OR '1'='1", "APR_X"):
        shown = await page.request.get(f"{gw.url}/console/approvals/{forged}")
        assert shown.status == 404 and "no approval" in await shown.text()
        decided = await page.request.post(
            f"{gw.url}/console/approvals/{forged}/decide", form={"verdict": "approve", "reason": "x", "csrf": csrf}
        )
        assert decided.status == 404 and "Traceback" not in await decided.text()
