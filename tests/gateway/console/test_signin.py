"""Sign-in and sign-out in a real browser against a real gateway: the cookie's attributes, the
sign-in form's CSRF token, bad keys, and sign-out ending the session on the server (a replayed
cookie opens nothing)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.console.browser import shoot, sign_in
from tests.gateway.harness import Gateway, rows

pytestmark = pytest.mark.anyio


async def test_sign_in_sets_an_httponly_samesite_cookie_and_stores_only_its_hash(
    gateway: Gateway, browser: Any
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{gateway.url}/console/approvals")
    await shoot(page, "sign-in")
    await sign_in(page, gateway, "alice")
    assert page.url == f"{gateway.url}/console/approvals"
    (cookie,) = [c for c in await context.cookies() if c["name"] == "warden_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/console"
    assert not cookie["secure"]  # plain http on loopback; https public_base_url sets Secure
    assert await page.evaluate("() => document.cookie") == ""  # no script reads the session
    stored = rows(gateway, "SELECT token_hash, identity FROM console_sessions WHERE identity = 'alice'")
    assert stored and all(cookie["value"] not in str(r) for r in stored)
    signins = rows(gateway, "SELECT effect FROM audit_events WHERE method = 'console/sign-in' AND identity = 'alice'")
    assert {"effect": "allow"} in signins


async def test_a_bad_key_is_refused_and_shown_as_such(gateway: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{gateway.url}/console/login")
    await page.fill("#key", "wdn_abcdefgh_" + "x" * 43)
    await page.click("#sign-in")
    assert "not valid or has been revoked" in (await page.text_content(".error") or "")
    await page.goto(f"{gateway.url}/console/approvals")
    assert "/console/login" in page.url


async def test_the_sign_in_form_needs_its_own_csrf_token(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:  # a cross-site form posting a key
        forged = await http.post("/console/login", data={"key": gateway.keys["alice"], "csrf": "guess"})
    assert forged.status_code == 403 and "warden_console=" not in forged.headers.get("set-cookie", "")


async def test_sign_out_ends_the_session_on_the_server(gateway: Gateway, browser: Any) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, gateway, "root", "/console/audit")
    (cookie,) = [c for c in await context.cookies() if c["name"] == "warden_console"]
    await page.click("#sign-out")
    await page.wait_for_url("**/console/login")
    assert not [c for c in await context.cookies() if c["name"] == "warden_console"]
    await page.goto(f"{gateway.url}/console/audit")
    assert "/console/login" in page.url
    replay = await browser.new_context()  # the old cookie, kept by an attacker, is worth nothing now
    await replay.add_cookies([{k: cookie[k] for k in ("name", "value", "domain", "path")}])
    again = await replay.new_page()
    await again.goto(f"{gateway.url}/console/audit")
    assert "/console/login" in again.url
    assert rows(gateway, "SELECT id FROM console_sessions WHERE identity = 'root'") == []


async def test_next_never_leaves_the_console(gateway: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    page.set_default_timeout(30_000)
    await page.goto(f"{gateway.url}/console/login?next=//evil.example/x")
    await page.fill("#key", gateway.keys["alice"])
    await page.click("#sign-in")
    await page.wait_for_load_state()
    assert page.url == f"{gateway.url}/console/approvals"


async def test_signing_in_again_ends_the_previous_session(gateway: Gateway, browser: Any) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, gateway, "alice")
    (first,) = [c for c in await context.cookies() if c["name"] == "warden_console"]
    await page.goto(f"{gateway.url}/console/login")
    await page.fill("#key", gateway.keys["bob"])
    await page.click("#sign-in")
    await page.wait_for_load_state()
    assert await page.text_content(".who") == "bob"
    replay = await browser.new_context()
    await replay.add_cookies([{k: first[k] for k in ("name", "value", "domain", "path")}])
    again = await replay.new_page()
    await again.goto(f"{gateway.url}/console/approvals")
    assert "/console/login" in again.url
