"""Audit pages in a real browser: an auditor filters the log, pages through it, opens an event with
its trail, downloads an export of the filter whose rows are the API's, and verifies the chain;
people without the auditor role get none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.gateway.approvals.harness import call
from tests.gateway.console.browser import shoot, sign_in
from tests.gateway.harness import Gateway

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def calls(gateway: Gateway) -> Gateway:
    """Allowed and denied calls by the agent, so the log has something to filter."""

    async def make() -> None:
        await call(gateway, "writer-agent", "time__get_current_time", {"timezone": "UTC"})
        for n in range(3):
            await call(gateway, "writer-agent", "notes__delete_note", {"id": n})
        await call(gateway, "writer-agent", "notes__add_note", {"title": "plain note", "body": "b"})

    anyio.run(make)
    return gateway


async def _api_export(gw: Gateway, fmt: str, **filters: str) -> bytes:
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
        r = await http.get(
            "/audit/export", params={**filters, "format": fmt}, headers={"Authorization": f"Bearer {gw.keys['bob']}"}
        )
    assert r.status_code == 200, r.text
    return r.content


async def test_an_auditor_filters_and_the_export_matches_the_api(calls: Gateway, browser: Any) -> None:
    page = await (await browser.new_context(accept_downloads=True)).new_page()
    await sign_in(page, calls, "bob", "/console/audit")
    await page.fill("#f-identity", "writer-agent")
    await page.select_option("#f-effect", "deny")
    await page.select_option("#f-phase", "decision")
    await page.click("#search")
    await page.wait_for_load_state()
    shown = page.locator("#events tr.event")
    assert await shown.count() == 3
    for i in range(3):
        assert "deny" in (await shown.nth(i).text_content() or "")
        assert "delete_note" in (await shown.nth(i).text_content() or "")
    await shoot(page, "audit-search")
    filters = {"identity": "writer-agent", "effect": "deny", "phase": "decision"}
    for fmt in ("csv", "jsonl"):
        async with page.expect_download() as started:
            await page.click(f"#export-{fmt}")
        download = await started.value
        got = Path(await download.path()).read_bytes()  # noqa: ASYNC240 (a small local file)
        assert got == await _api_export(calls, fmt, **filters)
        assert len(got.splitlines()) == (4 if fmt == "csv" else 3)


async def test_keyset_pages_and_an_event_with_its_trail(calls: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, calls, "bob", "/console/audit?identity=writer-agent&limit=2")
    seen: list[str] = []
    while True:
        seqs = [await r.get_attribute("data-seq") for r in await page.locator("#events tr.event").all()]
        assert 1 <= len(seqs) <= 2
        seen += [s for s in seqs if s]
        if await page.locator("#older").count() == 0:
            break
        await page.click("#older")
        await page.wait_for_load_state()
    assert seen == sorted(seen, key=int, reverse=True) and len(set(seen)) == len(seen) >= 7
    await page.goto(f"{calls.url}/console/audit?identity=writer-agent&tool=get_current_time&phase=outcome")
    await page.locator("#events tr.event a").first.click()
    await page.wait_for_load_state()
    trail = await page.locator("#trail tbody tr").all_text_contents()
    assert len(trail) == 2 and "decision" in trail[0] and "outcome" in trail[1]
    await shoot(page, "audit-event")


async def test_the_chain_verifies(calls: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, calls, "bob", "/console/audit/verify")
    assert "The chain verifies" in (await page.text_content("#verify-result") or "")


async def test_a_bad_filter_is_named_and_loses_nothing(calls: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, calls, "bob", "/console/audit?since=2026-12-02T00:00&until=2026-12-01T00:00")
    assert "until" in (await page.text_content("#error") or "") and "empty" in (await page.text_content("#error") or "")
    await page.goto(f"{calls.url}/console/audit")
    assert await page.locator("#events tr.event").count() > 0


async def test_without_the_auditor_role_there_is_no_audit(calls: Gateway, browser: Any) -> None:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, calls, "alice", "/console/audit")
    assert "does not hold the 'auditor' role" in (await page.text_content("#error") or "")
    assert await page.get_by_role("link", name="Audit").count() == 0
    response = await page.request.get(f"{calls.url}/console/audit/export?format=csv")
    assert response.status == 403 and "delete_note" not in await response.text()
