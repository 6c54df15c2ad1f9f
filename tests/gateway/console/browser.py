"""What a person does in the console, as Playwright steps (tests/gateway/console/test_*.py)."""

from __future__ import annotations

from typing import Any

from tests.gateway.console.conftest import SCREENSHOTS
from tests.gateway.harness import Gateway

TIMEOUT_MS = 30_000


async def sign_in(page: Any, gw: Gateway, who: str, path: str = "/console/approvals") -> None:
    """Open ``path``; the console sends the browser to sign-in, and back to ``path`` after it."""
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(gw.url + path)
    assert "/console/login" in page.url, page.url
    await page.fill("#key", gw.keys[who])
    await page.click("#sign-in")
    await page.wait_for_load_state()


async def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def csrf_of(page: Any) -> str:
    """The session's CSRF token, as the page's own sign-out form carries it."""
    value: str = await page.get_attribute("form.signout input[name=csrf]", "value")
    return value
