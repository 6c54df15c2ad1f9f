"""The console in the real app in-process (its real lifespan, over ASGI; SQLite and PostgreSQL):
the approval link's redirect for browsers, the JSON API kept for API clients, Secure cookies
behind an https public URL, and the headers every page carries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.db import create_db_engine
from gateway.identities import IdentityStore

pytestmark = pytest.mark.anyio

SHIPPED_POLICIES = Path(__file__).resolve().parents[3] / "policies"


@pytest.fixture
async def console(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client of the app served at an https public URL, and alice's key (alice: approver, auditor, admin)."""
    engine = create_db_engine(database_url)
    key = IdentityStore(engine).create("alice")[1]
    engine.dispose()
    (tmp_path / "upstreams.yaml").write_text("servers: {}\n")
    settings = Settings(
        database_url=database_url,
        policy_dir=SHIPPED_POLICIES,
        upstreams_file=tmp_path / "upstreams.yaml",
        policy_reload=False,
        public_base_url="https://warden.example",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://warden.example") as http:
            yield http, key


async def _sign_in(http: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await http.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    return await http.post("/console/login", data={"key": key, "csrf": token.group(1), "next": "/console/audit"})


async def test_cookies_are_secure_behind_an_https_public_url(console: tuple[httpx.AsyncClient, str]) -> None:
    http, key = console
    signed = await _sign_in(http, key)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/audit"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("warden_console="))
    assert "secure" in cookie.lower() and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    page = await http.get("/console/audit")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    assert key not in page.text


async def test_a_browser_opening_an_approval_link_goes_to_the_console(console: tuple[httpx.AsyncClient, str]) -> None:
    http, key = console
    browser = await http.get("/approvals/apr_abc123def456", headers={"Accept": "text/html,*/*"})
    assert browser.status_code == 303 and browser.headers["location"] == "/console/approvals/apr_abc123def456"
    landing = await http.get(browser.headers["location"])
    assert landing.status_code == 303
    assert landing.headers["location"] == "/console/login?next=%2Fconsole%2Fapprovals%2Fapr_abc123def456"
    api = await http.get(
        "/approvals/apr_abc123def456", headers={"Accept": "text/html", "Authorization": f"Bearer {key}"}
    )
    assert api.status_code == 404 and api.json()["detail"] == "no approval 'apr_abc123def456'"
    plain = await http.get("/approvals/apr_abc123def456")
    assert plain.status_code == 401  # an API client without a key gets the API's answer, as before


async def test_a_state_change_without_a_session_or_token_changes_nothing(
    console: tuple[httpx.AsyncClient, str],
) -> None:
    http, key = console
    anonymous = await http.post("/console/ops/identities", data={"name": "mallory"})
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/console/login")
    await _sign_in(http, key)
    no_token = await http.post("/console/ops/identities", data={"name": "mallory"})
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    keys = await http.get("/console/ops")
    assert "mallory" not in keys.text
