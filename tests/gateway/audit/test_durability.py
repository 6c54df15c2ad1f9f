"""SIGKILL the gateway mid-stream: every call the client saw succeed has its audit records."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import cast

import anyio
import pytest
from mcp_types import RequestParamsMeta
from sqlalchemy import text

from gateway.db import create_db_engine
from tests.gateway.harness import connect, fixture_policy_dir, run_gateway, run_notes_upstream, upstreams_yaml


@pytest.mark.anyio
async def test_every_call_seen_succeeding_is_audited_after_sigkill(tmp_path: Path) -> None:
    policy_dir = fixture_policy_dir(tmp_path)
    succeeded: list[str] = []
    enough = anyio.Event()
    with (
        run_notes_upstream(tmp_path) as notes,
        run_gateway(tmp_path, policy_dir, upstreams_yaml(notes.url), ["reader-agent"]) as gw,
    ):

        async def worker(n: int) -> None:
            try:
                async with connect(gw, "reader-agent") as client:
                    for _ in range(10_000):
                        ref = uuid.uuid4().hex
                        meta = cast(RequestParamsMeta, {"warden/request_id": ref})
                        result = await client.call_tool("time__get_current_time", {"timezone": "UTC"}, meta=meta)
                        if not result.is_error:
                            succeeded.append(ref)
                            if len(succeeded) >= 60:
                                enough.set()
            except Exception:  # the gateway dies under us: expected
                return

        async def assassin() -> None:
            await enough.wait()
            gw.kill()

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for n in range(4):
                    tg.start_soon(worker, n)
                tg.start_soon(assassin)

    assert len(succeeded) >= 60
    engine = create_db_engine(gw.database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT request_ref, phase, outcome FROM audit_events WHERE request_ref IS NOT NULL"))
        recorded = {(r[0], r[1], r[2]) for r in rows}
    engine.dispose()
    missing = [
        ref for ref in succeeded if (ref, "outcome", "ok") not in recorded or (ref, "decision", None) not in recorded
    ]
    assert not missing, f"{len(missing)} calls the client saw succeed have no audit record"
