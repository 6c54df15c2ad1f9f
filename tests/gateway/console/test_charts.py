"""The charts page in a real browser: decisions over time by effect, top denied tools and latency
percentiles, drawn as inline SVG from the real audit log."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.approvals.harness import call
from tests.gateway.console.browser import shoot, sign_in
from tests.gateway.harness import Gateway

pytestmark = pytest.mark.anyio


async def test_the_charts_show_what_the_log_holds(gateway: Gateway, browser: Any) -> None:
    for n in range(2):
        await call(gateway, "writer-agent", "notes__delete_note", {"id": n})
    for _ in range(3):
        await call(gateway, "writer-agent", "time__get_current_time", {"timezone": "UTC"})
    page = await (await browser.new_context()).new_page()
    await sign_in(page, gateway, "bob", "/console/charts")
    timeline = page.locator("#chart-timeline svg")
    titles = " ".join(await timeline.locator("rect title").all_text_contents())
    assert "allow: " in titles and "deny: " in titles
    denied = await page.text_content("#chart-denied svg") or ""
    assert "notes/delete_note" in denied and "time" not in denied
    latency = await page.text_content("#chart-latency svg") or ""
    assert "total p50" in latency and "upstream p99" in latency
    await shoot(page, "charts")
