"""warden/demo.py: the demo's steps that need no model, run for real (the README's first command).

The gateway the demo starts (its policies, its two PyPI upstreams over stdio, its identities) serves the
demo's agents, and the run's audit summary, read through the audit query API, shows each call's decision.
Training, vLLM and the agent (steps 3-8) need a model: `make demo` runs those.
"""

from __future__ import annotations

from pathlib import Path

import anyio

from agent.tools import ToolResult, connect
from warden import demo

REPO = Path(__file__).resolve().parents[2]


async def _calls(gw: demo.DemoGateway) -> tuple[set[str], ToolResult, ToolResult]:
    async with connect(f"{gw.url}/mcp", gw.keys["research-agent"]) as tools:
        offered = {t["function"]["name"] for t in await tools.openai_tools()}
        allowed = await tools.call("time__get_current_time", {"timezone": "Asia/Tokyo"}, "req_demo_allowed")
    async with connect(f"{gw.url}/mcp", gw.keys["ops-agent"]) as tools:
        denied = await tools.call("git__git_reset", {"repo_path": str(gw.repo)}, "req_demo_denied")
    return offered, allowed, denied


def test_the_demo_gateway_serves_its_agents_and_the_audit_summary_shows_each_call(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    workdir.mkdir()
    with demo.demo_gateway(workdir, REPO / "policies", tmp_path / "repo") as gw:
        assert set(gw.keys) == set(demo.DEMO_IDENTITIES) and (workdir / "keys.json").stat().st_mode & 0o077 == 0
        offered, allowed, denied = anyio.run(_calls, gw)
    assert "time__get_current_time" in offered and "git__git_status" in offered
    assert "git__git_reset" not in offered  # research-agent is a reader
    assert not allowed.is_error and "Asia/Tokyo" in allowed.text
    assert denied.is_error and denied.text.startswith("denied by policy (rule deny-git-reset)")

    events = demo.audit_rows(gw.database_url, gw.start_seq)
    summary = [(e.identity, f"{e.server}__{e.tool}", e.effect, e.outcome, e.request_ref) for e in events]
    assert summary == [
        ("research-agent", "time__get_current_time", "allow", "ok", "req_demo_allowed"),
        ("ops-agent", "git__git_reset", "deny", "denied", "req_demo_denied"),
    ]
    assert events[1].rule_ids == ["deny-git-reset"]
    with demo.console.capture() as printed:
        demo.print_audit(events)
    table = printed.get()
    assert "time__get_current_time" in table and "deny-git-reset" in table and "req_demo_den" in table


def test_a_second_run_reuses_the_keys_and_summarizes_only_its_own_calls(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'warden.db'}"
    keys = demo.ensure_keys(database_url, tmp_path / "keys.json")
    assert demo.last_seq(database_url) == 0
    assert demo.ensure_keys(database_url, tmp_path / "keys.json") == keys
    (tmp_path / "keys.json").write_text('{"alice": "wdn_not-a-key"}')  # a stale key is replaced, not trusted
    renewed = demo.ensure_keys(database_url, tmp_path / "keys.json")
    assert renewed["alice"] != "wdn_not-a-key" and renewed["research-agent"] != keys["research-agent"]
    assert demo.audit_rows(database_url, demo.last_seq(database_url)) == []
