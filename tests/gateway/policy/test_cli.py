"""`warden policy check|test|explain` through the real command line (typer's CliRunner)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.gateway.policy.conftest import CATALOG, SHIPPED, write
from warden.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", *args])
    return result.exit_code, result.output


def test_shipped_policies_pass_check_and_test() -> None:
    code, out = invoke("check", "--dir", str(SHIPPED), "--catalog", str(CATALOG), "--strict")
    assert code == 0, out
    assert "OK: 3 files" in out
    code, out = invoke("test", "--dir", str(SHIPPED))
    assert code == 0, out
    assert "FAIL" not in out
    assert "cases passed" in out


def test_default_dir_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARDEN_POLICY_DIR", str(SHIPPED))
    code, out = invoke("check")
    assert code == 0, out


def test_check_prints_file_line_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "rules:\n  - id: a\n    effect: deny\n    tools: [x]\n    when: 'args.x >'\n")
    code, out = invoke("check", "--dir", str(tmp_path))
    assert code == 1
    assert f"{path}:5: rules[0].when: CEL syntax error" in out


def test_check_with_catalog_reports_schema_errors(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "rules:\n  - {id: a, effect: deny, tools: [time__convert_time], when: 'args.tz == 1'}\n")
    code, out = invoke("check", "--dir", str(tmp_path), "--catalog", str(CATALOG))
    assert code == 1
    assert "rule 'a': condition references a field not in the inputSchema of tool time__convert_time" in out


def test_check_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "identities:\n  bot: {grants: [nothing__here]}\n")
    code, out = invoke("check", "--dir", str(tmp_path), "--catalog", str(CATALOG))
    assert code == 0 and "warning" in out
    code, _ = invoke("check", "--dir", str(tmp_path), "--catalog", str(CATALOG), "--strict")
    assert code == 1


def test_check_rejects_a_bad_catalog(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.json"
    bad.write_text(json.dumps({"tool": []}))
    code, out = invoke("check", "--dir", str(SHIPPED), "--catalog", str(bad))
    assert code == 1 and "not a tools/list result" in out


def test_test_fails_when_a_case_fails(tmp_path: Path) -> None:
    shutil.copytree(SHIPPED, tmp_path / "p")
    write(
        tmp_path / "p" / "tests",
        "wrong.yaml",
        """\
        cases:
          - name: wrongly expects reset to be allowed
            identity: ops-agent
            tool: git__git_reset
            arguments: {repo_path: /r}
            expect: {effect: allow}
        """,
    )
    code, out = invoke("test", "--dir", str(tmp_path / "p"))
    assert code == 1
    assert "FAIL" in out
    assert "wrong.yaml:2: wrongly expects reset to be allowed: effect deny, expected allow" in out


def test_test_rejects_malformed_cases_and_missing_tests(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "identities:\n  bot: {}\n")
    code, out = invoke("test", "--dir", str(tmp_path))
    assert code == 1 and "no test cases" in out
    case = write(tmp_path / "tests", "t.yaml", "cases:\n  - name: x\n    identity: bot\n    tool: t\n    expect: {}\n")
    code, out = invoke("test", "--dir", str(tmp_path))
    assert code == 1 and f"{case}:5:" in out


def test_explain_prints_decision_and_rules() -> None:
    code, out = invoke(
        "explain",
        "--identity",
        "research-agent",
        "--tool",
        "git__git_log",
        "--args",
        '{"max_count": 500}',
        "--dir",
        str(SHIPPED),
    )
    assert code == 0, out
    assert "decision: deny" in out
    assert "rule ids: deny-large-git-log" in out
    assert "grant:role:reader" in out
    assert "rule(s) for other tools not shown" in out


def test_explain_approve_shows_approvers_and_all_rules() -> None:
    code, out = invoke("explain", "-i", "ops-agent", "-t", "git__git_commit", "--dir", str(SHIPPED), "--all")
    assert code == 0, out
    assert "decision: approve" in out
    assert "approvers: approver" in out
    assert "deny-git-reset" in out


def test_explain_rejects_bad_args() -> None:
    code, out = invoke("explain", "-i", "x", "-t", "y", "--args", "[1]", "--dir", str(SHIPPED))
    assert code == 1 and "JSON object" in out


EXAMPLE = SHIPPED / "examples" / "resources"


def test_resource_example_passes_check_and_test() -> None:
    code, out = invoke("check", "--dir", str(EXAMPLE), "--strict")
    assert code == 0, out
    code, out = invoke("test", "--dir", str(EXAMPLE))
    assert code == 0, out
    assert "FAIL" not in out


def test_explain_a_resource_read_shows_the_normalised_uri() -> None:
    uri = "file:///srv/shared/tls/../tls/%73erver.key"
    code, out = invoke("explain", "-i", "research-agent", "--resource", uri, "--server", "fs", "--dir", str(EXAMPLE))
    assert code == 0, out
    assert "decision: deny" in out
    assert "rule ids: deny-shared-private-keys" in out
    assert "matched as file:///srv/shared/tls/server.key" in out
    assert "grant:role:reader" in out


def test_explain_a_refused_uri() -> None:
    uri = "file:///srv/shared/a%2F..%2F..%2Fetc"
    code, out = invoke("explain", "-i", "research-agent", "--resource", uri, "--server", "fs", "--dir", str(EXAMPLE))
    assert code == 0, out
    assert "rule ids: default-deny" in out and "refused" in out


def test_explain_a_prompt_held_for_approval() -> None:
    args = ["-i", "research-agent", "--prompt", "everything__completable-prompt", "--dir", str(EXAMPLE)]
    code, out = invoke("explain", *args, "--args", '{"department": "Sales", "name": "Bo"}')
    assert code == 0, out
    assert "decision: approve" in out and "approvers: approver" in out
    assert "approve-completable-prompt" in out
    assert "rule(s) for other targets than this prompt not shown" in out


def test_explain_a_completion_shows_redaction() -> None:
    args = ["-i", "research-agent", "--complete", "everything__args-prompt", "--dir", str(EXAMPLE)]
    code, out = invoke("explain", *args, "--args", '{"argument": {"name": "city", "value": "Sp"}}')
    assert code == 0, out
    assert "decision: allow" in out
    assert "redacted: argument.value, context.arguments.city" in out


def test_explain_a_template_completion_and_a_sampling_request() -> None:
    code, out = invoke(
        "explain",
        *("-i", "research-agent", "--complete", "demo://resource/dynamic/blob/{resourceId}"),
        *("--server", "everything", "--dir", str(EXAMPLE)),
    )
    assert code == 0 and "rule ids: default-deny" in out, out
    code, out = invoke(
        "explain",
        *("-i", "research-agent", "--sampling", "everything", "--args", '{"maxTokens": 9000}'),
        *("--dir", str(EXAMPLE)),
    )
    assert code == 0, out
    assert "rule ids: deny-large-sampling" in out
    assert "5 rule(s) for other targets than this sampling not shown" in out


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--tool", "a__b", "--prompt", "a__b"],
        ["--sampling", "fs", "--roots", "fs"],
    ],
)
def test_explain_needs_exactly_one_request(options: list[str]) -> None:
    code, out = invoke("explain", "-i", "x", *options, "--dir", str(SHIPPED))
    assert code == 1 and "exactly one of --tool" in out


def test_explain_a_resource_needs_its_server() -> None:
    code, out = invoke("explain", "-i", "x", "--resource", "file:///srv/shared/a", "--dir", str(EXAMPLE))
    assert code == 1 and "--resource needs --server" in out


def test_case_naming_two_requests_is_rejected_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "identities:\n  bot: {}\n")
    case = write(
        tmp_path / "tests",
        "t.yaml",
        "cases:\n  - name: x\n    identity: bot\n    tool: t\n    roots: fs\n    expect: {effect: deny}\n",
    )
    code, out = invoke("test", "--dir", str(tmp_path))
    assert code == 1 and f"{case}:2:" in out and "exactly one of tool, resource, prompt" in out
    write(
        tmp_path / "tests",
        "t.yaml",
        "cases:\n  - name: x\n    identity: bot\n"
        "    completion: {prompt: p, template: 't:x'}\n    expect: {effect: deny}\n",
    )
    code, out = invoke("test", "--dir", str(tmp_path))
    assert code == 1 and "either prompt, or server and template" in out
