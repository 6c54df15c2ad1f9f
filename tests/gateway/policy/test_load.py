"""load_policy(): merged files, and every rejection naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy import PolicyError, load_policy
from tests.gateway.policy.conftest import write


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(directory)
    return [str(p) for p in info.value.problems]


def test_files_are_merged(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "identities:\n  bot: {roles: [r]}\n")
    write(tmp_path, "b.yml", "roles:\n  r: {grants: [t__x]}\nrules:\n  - {id: one, effect: deny, tools: [t__y]}\n")
    write(tmp_path / "tests", "ignored.yaml", "cases: []\n")
    policy = load_policy(tmp_path)
    assert [f.name for f in policy.files] == ["a.yaml", "b.yml"]
    assert policy.roles_of("bot") == frozenset({"r"})
    assert [r.id for r in policy.rules] == ["one"]
    assert str(policy.rules[0].location) == f"{tmp_path / 'b.yml'}:4"


def test_empty_and_null_sections_are_allowed(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "roles:\n  approver:\nrules:\n")
    write(tmp_path, "empty.yaml", "# nothing yet\n")
    policy = load_policy(tmp_path)
    assert set(policy.roles) == {"approver"}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("identities:\n  bot:\n    rolez: [a]\n", 3, "unknown key 'rolez'"),
        ("rules:\n  - id: a\n    effect: permit\n    tools: [x]\n", 3, "Input should be 'allow', 'deny' or 'approve'"),
        (
            "roles:\n  r: {}\nrules:\n  - id: a\n    effect: deny\n    tools: [x]\n    approvers: [r]\n",
            4,
            "approvers are only allowed on effect approve",
        ),
        ("rules:\n  - id: a\n    effect: approve\n    tools: [x]\n", 2, "needs at least one role in approvers"),
        ("rules:\n  - id: a\n    effect: deny\n    tools: [x]\n    when: 'args.x >'\n", 5, "CEL syntax error"),
        (
            "rules:\n  - id: a\n    effect: deny\n    tools: [x]\n    when: 'env.HOME == 1'\n",
            5,
            "unknown variable(s) env",
        ),
        ("rules:\n  - id: a\n    effect: deny\n    tools: ['x[ab']\n", 4, "unclosed '['"),
        ("rules:\n  - id: a\n    effect: deny\n    tools: []\n", 4, "at least 1 item"),
        ("rules:\n  - id: a\n    effect: deny\n", 2, "give exactly one target of tools, resources, prompts"),
        ("rules:\n  - id: default-deny\n    effect: deny\n    tools: [x]\n", 2, "reserved"),
        ("rate_limits:\n  - id: rl\n    tools: [x]\n    limit: 0\n    window_s: 60\n", 4, "greater than or equal to 1"),
        ("rate_limits:\n  - id: rl\n    tools: [x]\n    limit: 5\n    window_s: 0\n", 5, "greater than 0"),
        ("rate_limits:\n  - id: rl\n    tools: [x]\n    limit: '5'\n    window_s: 1\n", 4, "valid integer"),
        ("redact:\n  - tools: [x]\n    fields: ['a..b']\n", 3, "dotted field path"),
        ("identities:\n  '*': {}\n", 2, "not a valid name"),
        ("identities:\n  bot: {}\n  bot: {}\n", 3, "duplicate key 'bot'"),
        ("rules: [\n", 2, "YAML syntax error"),
        ("- just\n- a list\n", 1, "valid dictionary"),
    ],
)
def test_bad_file_names_file_and_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    problems = problems_of(tmp_path)
    assert any(p.startswith(f"{path}:{line}: ") and fragment in p for p in problems), problems


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - {id: same, effect: deny, tools: [x]}\n")
    b = write(tmp_path, "b.yaml", "rate_limits:\n  - {id: same, tools: [x], limit: 1, window_s: 1}\n")
    (problem,) = problems_of(tmp_path)
    assert problem.startswith(f"{b}:2: duplicate id 'same' (first defined at {tmp_path / 'a.yaml'}:2)")


def test_duplicate_identity_and_role_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "identities:\n  bot: {}\nroles:\n  r: {}\n")
    b = write(tmp_path, "b.yaml", "roles:\n  r: {}\nidentities:\n  bot: {}\n")
    problems = problems_of(tmp_path)
    assert any(p.startswith(f"{b}:4: duplicate identity 'bot'") for p in problems)
    assert any(p.startswith(f"{b}:2: duplicate role 'r'") for p in problems)


def test_unknown_roles_are_rejected_where_referenced(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.yaml",
        """\
        identities:
          bot: {roles: [ghost]}
        rules:
          - id: a
            effect: approve
            tools: [x]
            roles: [phantom]
            approvers: [spirit]
        """,
    )
    problems = problems_of(tmp_path)
    assert f"{path}:2: unknown role 'ghost'" in problems
    assert f"{path}:7: rule 'a': unknown role 'phantom' in roles" in problems
    assert f"{path}:8: rule 'a': unknown role 'spirit' in approvers" in problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules:\n  - {id: a, effect: nope, tools: [x]}\n")
    write(tmp_path, "b.yaml", "rules:\n  - {id: b, effect: deny, tools: [x], extra: 1}\n")
    assert len(problems_of(tmp_path)) == 2


def test_missing_or_empty_directory(tmp_path: Path) -> None:
    assert "does not exist" in problems_of(tmp_path / "nope")[0]
    assert "no *.yaml policy files" in problems_of(tmp_path)[0]
