"""check_against_catalog(): conditions against inputSchemas, globs against the tool list."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.policy import Policy, check_against_catalog, load_policy
from gateway.policy.schema_check import lint_policy, sample_arguments
from tests.gateway.policy.conftest import CATALOG, SHIPPED, write
from tests.gateway.policy.test_cli import invoke


def catalog() -> dict[str, Any]:
    return {t["name"]: t["inputSchema"] for t in json.loads(CATALOG.read_text())["tools"]}


def test_shipped_policies_are_clean_against_the_demo_catalog() -> None:
    assert check_against_catalog(load_policy(SHIPPED), catalog()) == []


def test_sample_arguments_cover_declared_properties() -> None:
    schema = {
        "type": "object",
        "$defs": {"Auth": {"type": "object", "properties": {"token": {"type": "string"}}}},
        "properties": {
            "n": {"type": "integer"},
            "x": {"type": ["null", "number"]},
            "s": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "mode": {"enum": ["fast", "slow"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "auth": {"$ref": "#/$defs/Auth"},
            "flag": {"type": "boolean"},
        },
    }
    assert sample_arguments(schema) == {
        "n": 0,
        "x": 0.0,
        "s": "",
        "mode": "fast",
        "tags": [""],
        "auth": {"token": ""},
        "flag": False,
    }


def test_condition_on_a_field_not_in_the_schema_is_an_error(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy(
        """
roles:
  r: {grants: ["git__*"]}
rules:
  - id: big-log
    effect: deny
    tools: ["git__git_lo*"]
    when: "args.max_count > 100"
  - id: typo
    effect: deny
    tools: ["git__*"]
    when: "args.repo_pth == '/'"
"""
    )
    problems = check_against_catalog(policy, catalog())
    errors = [p for p in problems if p.severity == "error"]
    typo = [p for p in errors if "'typo'" in p.message]
    assert [p for p in errors if "'big-log'" in p.message] == []
    assert len(typo) == 12  # every git tool lacks repo_pth
    assert typo[0].location.line == 9
    assert "references a field not in the inputSchema of tool git__git_add" in typo[0].message
    assert "repo_pth" in typo[0].message


def test_condition_reading_an_optional_field_of_other_tools(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy('rules:\n  - {id: wide, effect: deny, tools: ["git__*"], when: "args.max_count > 1"}\n')
    flagged = {p.message.split("tool ")[1].split(" ")[0] for p in check_against_catalog(policy, catalog())}
    assert "git__git_status" in flagged
    assert "git__git_log" not in flagged


def test_globs_matching_no_tool_are_warnings(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy(
        """
identities:
  bot: {grants: ["time__*", "tiem__*"]}
rules:
  - {id: ghost, effect: deny, tools: [git__git_push]}
rate_limits:
  - {id: rl, tools: [web__*], limit: 1, window_s: 1}
redact:
  - {tools: ["notes__*"], fields: [password]}
"""
    )
    problems = check_against_catalog(policy, catalog())
    assert all(p.severity == "warning" for p in problems)
    text = "\n".join(str(p) for p in problems)
    assert "'tiem__*' matches no tool" in text
    assert "rule 'ghost' matches no tool" in text
    assert "rate limit 'rl': 'web__*' matches no tool" in text
    assert "redacted field 'password' is declared by none of" in text
    assert len(problems) == 4
    assert next(p for p in problems if "tiem" in p.message).location.line == 3


MakePolicy = Callable[[str], Policy]

OTHER_KINDS = """
identities:
  bot:
    grants: ["git__*"]
    resources: {git: ["file:///repo/**"], gti: ["file:///x/**"]}
    prompts: ["git__review", "tiem__*"]
roles:
  approver: {}
rules:
  - {id: res-ok, effect: deny, resources: {git: ["file:///repo/**"]}, when: 'uri.endsWith(".key")'}
  - {id: res-typo, effect: deny, resources: {gitt: ["**"]}}
  - {id: res-type, effect: deny, resources: {git: ["**"]}, when: 'uri > 3'}
  - {id: prompt-typo, effect: deny, prompts: ["nots__*"]}
  - {id: sampling-ok, effect: deny, sampling: ["*"], when: 'params.maxTokens > 10'}
  - {id: sampling-field, effect: deny, sampling: [git], when: 'params.max_tokens > 10'}
  - {id: elicit-ok, effect: approve, elicitation: [git], approvers: [approver], when: 'params.message != ""'}
  - {id: roots-typo, effect: deny, roots: [gti]}
"""


def test_other_kinds_warn_on_unknown_servers_and_check_conditions(make_policy: MakePolicy) -> None:
    problems = check_against_catalog(make_policy(OTHER_KINDS), catalog())
    text = [(p.severity, p.message) for p in problems]
    warnings = sorted(m for s, m in text if s == "warning")
    errors = sorted(m for s, m in text if s == "error")
    assert any("resource grant of identity 'bot': server 'gti' matches no server" in m for m in warnings)
    assert any("prompt grant of identity 'bot': prompt glob 'tiem__*' names no server" in m for m in warnings)
    assert any(
        "rule 'res-typo': server 'gitt' matches no server in the catalog (git, notes, time)" in m for m in warnings
    )
    assert any("rule 'prompt-typo': prompt glob 'nots__*'" in m for m in warnings)
    assert any("rule 'roots-typo': server 'gti'" in m for m in warnings)
    assert not any("res-ok" in m or "sampling-ok" in m or "elicit-ok" in m for m in warnings + errors)
    assert any(m.startswith("rule 'res-type': condition fails on a sample resource request") for m in errors)
    assert any(
        m.startswith("rule 'sampling-field': condition reads a field the MCP spec does not define") for m in errors
    )
    # non-tool rules are not reported as matching no tool
    assert not any("matches no tool" in m for m in warnings)
    assert len(errors) == 2


def test_lint_warns_about_uri_globs_granting_siblings(make_policy: MakePolicy) -> None:
    policy = make_policy(
        'identities:\n  bot:\n    resources: {fs: ["file:///data*", "file:///ok/**", "file:///x/*.txt", "*"]}\n'
        'rules:\n  - {id: r, effect: deny, resources: {fs: ["file:///srv/shared*/**"]}}\n'
    )
    messages = [p.message for p in lint_policy(policy)]
    assert len(messages) == 2, messages
    assert "URI glob 'file:///data*' also matches siblings such as 'file:///data-secret/'" in messages[0]
    assert messages[1].startswith("rule 'r': URI glob 'file:///srv/shared*/**'")


def test_prompt_conditions_are_checked_against_declared_arguments(make_policy: MakePolicy) -> None:
    policy = make_policy(
        """
identities:
  bot:
    prompts: ["git__review", "git__nothing*"]
rules:
  - {id: ok, effect: deny, prompts: [git__review], when: 'args.code.size() > 10'}
  - {id: typo, effect: deny, prompts: [git__review], when: 'args.cdoe == ""'}
  - {id: nowhere, effect: deny, prompts: [git__gone]}
redact:
  - {prompts: ["git__nope"], fields: [code]}
"""
    )
    prompts = {"git__review": ["code", "style"], "git__summary": []}
    problems = check_against_catalog(policy, catalog(), prompts=prompts)
    errors = [p.message for p in problems if p.severity == "error"]
    warnings = [p.message for p in problems if p.severity == "warning"]
    assert errors == [
        "rule 'typo': condition references an argument not declared by prompt git__review (no field 'cdoe')"
    ]
    assert "rule 'nowhere' matches no prompt in the catalog" in warnings
    assert "prompt grant of identity 'bot': 'git__nothing*' matches no prompt in the catalog" in warnings
    assert "prompt redaction: 'git__nope' matches no prompt in the catalog" in warnings


def test_check_reads_prompts_from_the_catalog_file(tmp_path: Path) -> None:
    write(tmp_path / "p", "p.yaml", "rules:\n  - {id: a, effect: deny, prompts: [time__p], when: 'args.zone == 1'}\n")
    data = json.loads(CATALOG.read_text())
    data["prompts"] = [{"name": "time__p", "arguments": [{"name": "tz"}]}]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data))
    code, out = invoke("check", "--dir", str(tmp_path / "p"), "--catalog", str(path))
    assert code == 1 and "argument not declared by prompt time__p" in out
