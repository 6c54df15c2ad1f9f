"""gateway/app.py: every route authenticates before it reads a body, and what the lifespan runs in the
background, on the real app (in-process, real upstream).

FastAPI reads a declared body parameter before it runs any dependency (the key check among them),
so a route that declares one reads an unauthenticated caller's body in full. Routes take their
body through a dependency that depends on the key check instead (routes/approvals.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from gateway.app import create_app
from gateway.config import Settings
from gateway.routes import admin, approvals, audit, health, tools
from gateway.types import Caller
from tests.gateway.approvals.harness import eventually


def test_no_route_reads_a_body_before_its_dependencies() -> None:
    routers = (admin.router, approvals.router, audit.router, health.router, tools.router)
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    assert "/approvals/{approval_id}/approve" in {r.path for r in routes}
    assert [r.path for r in routes if r.body_field is not None] == []


CALLER = Caller("caller")
POLICY = """
identities:
  caller: {grants: ["time__*"]}
rate_limits:
  - {id: rl-time, tools: ["time__*"], limit: 2, window_s: 0.5}
"""


@pytest.mark.anyio
async def test_the_lifespan_sweeps_idle_rate_limit_windows(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "policy.yaml").write_text(POLICY)
    (tmp_path / "upstreams.yaml").write_text(
        f'servers:\n  time:\n    command: {sys.executable}\n    args: ["-m", "mcp_server_time"]\n'
    )
    settings = Settings(
        database_url=database_url,
        policy_dir=tmp_path / "policies",
        upstreams_file=tmp_path / "upstreams.yaml",
        policy_reload=False,
        ratelimit_sweep_s=0.05,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        proxy = app.state.gateway.proxy
        for _ in range(2):
            result = await proxy.call(CALLER, "time__get_current_time", {"timezone": "UTC"})
            assert not result.is_error
        limited = await proxy.call(CALLER, "time__get_current_time", {"timezone": "UTC"})
        assert limited.is_error  # the window is full: the limit holds while the sweep runs
        assert proxy.limiter.windows == 1

        async def swept() -> bool | None:
            return True if proxy.limiter.windows == 0 else None

        # The window empties 0.5 s after the last counted call; the next sweep (every 0.05 s) drops it.
        await eventually(swept, 10, "the sweep to drop the idle window")
        assert not (await proxy.call(CALLER, "time__get_current_time", {"timezone": "UTC"})).is_error
