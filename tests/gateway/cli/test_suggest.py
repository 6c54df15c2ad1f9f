"""gateway/cli/suggest.py: `warden policy suggest` on the five real servers, and risk in `explain`.

Through the real command line (typer's CliRunner); the suggestion's servers are launched from a
real upstreams file, and what it writes is checked with `warden policy check` and `test`.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gateway.risk.suggest import CatalogTool
from gateway.risk.view import tool_view
from tests.gateway.harness import REPO
from warden.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", *args])
    return result.exit_code, result.output


def test_suggest_from_an_upstreams_file_then_check_and_test(
    tmp_path: Path, five_servers: Path, live: list[CatalogTool]
) -> None:
    policy_dir = tmp_path / "policies"
    code, out = invoke("suggest", "--upstreams", str(five_servers), "--dir", str(policy_dir))
    assert code == 0, out
    assert "+  - id: filesystem.write_file.approve" in out and "not written: review the diff" in out
    assert not policy_dir.exists()

    code, out = invoke("suggest", "--upstreams", str(five_servers), "--dir", str(policy_dir), "--write")
    assert code == 0, out
    assert (policy_dir / "suggested.yaml").exists() and (policy_dir / "tests" / "suggested.yaml").exists()
    code, out = invoke("check", "--dir", str(policy_dir), "--strict")
    assert code == 0 and "OK: 1 files, 3 identities, 3 roles" in out, out
    catalog = tmp_path / "tools.json"
    catalog.write_text(json.dumps({"tools": [tool_view(e.public_name, e.server, e.tool)["definition"] for e in live]}))
    code, out = invoke("check", "--dir", str(policy_dir), "--catalog", str(catalog), "--strict")
    assert code == 0 and "warning" not in out, out
    code, out = invoke("test", "--dir", str(policy_dir))
    assert code == 0 and "FAIL" not in out, out

    code, out = invoke("suggest", "--upstreams", str(five_servers), "--dir", str(policy_dir), "--write")
    assert code == 1 and "already exist(s); pass --force" in out, out


def test_suggest_from_a_catalog_file_refuses_clashing_roles(tmp_path: Path, snapshot: list[CatalogTool]) -> None:
    catalog = tmp_path / "tools.json"
    catalog.write_text(json.dumps([tool_view(e.public_name, e.server, e.tool) for e in snapshot]))
    code, out = invoke("suggest", "--catalog", str(catalog), "--dir", str(REPO / "policies"), "--write")
    assert code == 1 and "role 'reader' is already defined" in out and "--role-prefix" in out, out
    assert not (REPO / "policies" / "suggested.yaml").exists()


def test_a_path_as_name_is_refused_before_anything_runs(tmp_path: Path) -> None:
    code, out = invoke("suggest", "--upstreams", str(tmp_path / "missing.yaml"), "--name", "../../etc/x")
    assert code == 1 and "must match" in out, out


def test_an_unreadable_upstreams_file_is_a_clear_error(tmp_path: Path) -> None:
    code, out = invoke("suggest", "--upstreams", str(tmp_path / "missing.yaml"), "--dir", str(tmp_path))
    assert code == 1 and "could not read the catalog" in out and "missing.yaml" in out, out


def test_explain_shows_the_risk_and_its_evidence(tmp_path: Path, snapshot: list[CatalogTool]) -> None:
    catalog = tmp_path / "tools.json"
    catalog.write_text(json.dumps({"tools": [tool_view(e.public_name, e.server, e.tool) for e in snapshot]}))
    args = ["explain", "-i", "ops-agent", "-t", "git__git_reset", "--dir", str(REPO / "policies")]
    code, out = invoke(*args, "--args", '{"repo_path": "/r"}', "--catalog", str(catalog))
    assert code == 0, out
    assert "risk:     destructive,writes" in out
    assert "annotation: destructiveHint=true -> destructive" in out and "name: verb 'reset' -> destructive" in out
    code, out = invoke(*args, "--args", '{"repo_path": "/r"}')
    assert code == 0 and "risk:     not shown (pass --catalog" in out, out
