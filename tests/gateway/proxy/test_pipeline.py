"""The call pipeline fails closed: when the audit log cannot commit a decision, the call is denied
and never forwarded (real gateway, real upstreams, a real database that stops working)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy import text

from gateway.audit.verify import verify
from gateway.db import create_db_engine
from tests.gateway.audit.events import allow_inserts, refuse_inserts
from tests.gateway.harness import (
    Gateway,
    connect,
    fixture_policy_dir,
    metric,
    run_gateway,
    run_notes_upstream,
    text_of,
    upstreams_yaml,
)


def fail_closed_count(gw: Gateway, reason: str) -> float:
    return metric(gw, f'warden_fail_closed_total{{reason="{reason}"}}')


@pytest.mark.anyio
async def test_audit_failure_denies_the_call_and_counts_it(tmp_path: Path) -> None:
    policy_dir = fixture_policy_dir(tmp_path)
    with (
        run_notes_upstream(tmp_path) as notes,
        run_gateway(
            tmp_path, policy_dir, upstreams_yaml(notes.url), ["writer-agent"], WARDEN_UPSTREAM_PROBE_INTERVAL_S="3600"
        ) as gw,
    ):
        async with connect(gw, "writer-agent") as client:
            assert not (await client.call_tool("notes__echo", {"text": "before"})).is_error
            forwarded_before = len(notes.seen_headers())
            engine = create_db_engine(gw.database_url)
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE audit_events"))
            engine.dispose()
            result = await client.call_tool("notes__echo", {"text": "after"})
            with pytest.raises(MCPError) as listing:
                await client.list_tools()
        assert result.is_error and "audit log could not record" in text_of(result)
        for answer in (text_of(result), str(listing.value)):  # the agent's terms, never the database's
            assert not any(leak in answer.lower() for leak in ("audit_events", "sql", "table", "operationalerror"))
        assert "could not list tools" in str(listing.value)
        assert len(notes.seen_headers()) == forwarded_before, "a call the audit log could not record was forwarded"
        assert fail_closed_count(gw, "audit") == 1


@pytest.mark.anyio
async def test_a_failed_group_commit_denies_every_call_of_its_batch_and_forwards_none(tmp_path: Path) -> None:
    """Concurrent calls share grouped audit commits; when the database refuses them, each is denied, none sent."""
    policy_dir = fixture_policy_dir(tmp_path)
    with (
        run_notes_upstream(tmp_path) as notes,
        run_gateway(
            tmp_path, policy_dir, upstreams_yaml(notes.url), ["writer-agent"], WARDEN_UPSTREAM_PROBE_INTERVAL_S="3600"
        ) as gw,
    ):
        engine = create_db_engine(gw.database_url)
        async with connect(gw, "writer-agent") as client:
            assert not (await client.call_tool("notes__echo", {"text": "before"})).is_error
            forwarded_before = len(notes.seen_headers())
            refuse_inserts(engine)
            answers: list[str] = []

            async def call(n: int) -> None:
                result = await client.call_tool("notes__add_note", {"title": f"batch-{n}", "body": "b"})
                answers.append(text_of(result) if result.is_error else "FORWARDED")

            async with anyio.create_task_group() as tg:
                for n in range(16):
                    tg.start_soon(call, n)
            assert len(notes.seen_headers()) == forwarded_before, "a call whose decision was not committed was sent"
            allow_inserts(engine)
            listed = text_of(await client.call_tool("notes__list_notes", {}))
        assert len(answers) == 16 and all("audit log could not record" in a for a in answers), answers
        assert "batch-" not in listed
        assert fail_closed_count(gw, "audit") == 16
        assert verify(engine, None).ok
        engine.dispose()
