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
        # resources, prompts, server requests
        (
            "rules:\n  - id: a\n    effect: deny\n    tools: [x]\n    prompts: [y]\n",
            2,
            "rule 'a': give exactly one target of tools, resources, prompts, sampling, elicitation, roots "
            "(found tools, prompts)",
        ),
        (
            "rules:\n  - id: a\n    effect: deny\n    sampling: ['*']\n    roots: ['*']\n",
            2,
            "(found sampling, roots)",
        ),
        ("rules:\n  - id: a\n    effect: deny\n    resources: {}\n    tools: [x]\n", 2, "found tools, resources"),
        ("rules:\n  - id: a\n    effect: deny\n    resources:\n      fs: []\n", 5, "at least 1 item"),
        ("rules:\n  - id: a\n    effect: deny\n    resources:\n      fs: [/data/x]\n", 5, "needs a scheme"),
        (
            "rules:\n  - id: a\n    effect: deny\n    resources:\n      fs: ['file:///data/../etc/**']\n",
            5,
            "'.' or '..' segments",
        ),
        (
            "rules:\n  - id: a\n    effect: deny\n    resources:\n      'f s': ['file:///x']\n",
            5,
            "not allowed in tool or identity names",
        ),
        ("rules:\n  - id: a\n    effect: deny\n    prompts: ['bad prompt']\n", 4, "not allowed"),
        ("rules:\n  - id: a\n    effect: deny\n    sampling: fs\n", 4, "valid list"),
        (
            "rules:\n  - id: a\n    effect: deny\n    tools: [x]\n    when: 'uri == \"x\"'\n",
            2,
            "rule 'a' (tools): condition uses unknown variable(s) uri",
        ),
        (
            "rules:\n  - id: a\n    effect: deny\n    resources: {fs: ['**']}\n    when: 'args.x == 1'\n",
            2,
            "rule 'a' (resources): condition uses unknown variable(s) args; allowed: identity, server, uri",
        ),
        (
            "rules:\n  - id: a\n    effect: deny\n    sampling: ['*']\n    when: 'args.x == 1'\n",
            2,
            "allowed: identity, method, params, server",
        ),
        (
            "rules:\n  - id: a\n    effect: deny\n    prompts: ['*']\n    when: 'params.x == 1'\n",
            2,
            "allowed: args, identity, prompt, server, upstream_prompt",
        ),
        ("identities:\n  bot:\n    resources: [file:///x]\n", 3, "valid dictionary"),
        ("identities:\n  bot:\n    resources:\n      fs: ['file:///a%2Fb/**']\n", 4, "not a URI policy can match"),
        ("roles:\n  r:\n    prompts: ['a b']\n", 3, "not allowed"),
        ("roles:\n  r:\n    resourcez: {}\n", 3, "unknown key 'resourcez'"),
        ("redact:\n  - fields: [a]\n", 2, "exactly one of tools, prompts"),
        ("redact:\n  - tools: [x]\n    prompts: [y]\n    fields: [a]\n", 2, "exactly one of tools, prompts"),
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


def test_every_kind_compiles(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p.yaml",
        """\
        identities:
          bot:
            grants: [fs__read]
            resources: {fs: ["FILE:///Data/**"], "doc*": ["demo://x/*"]}
            prompts: ["fs__*"]
        roles:
          approver: {}
        rules:
          - {id: r1, effect: deny, resources: {fs: ["file:///Data/k/**"]}, when: 'uri.endsWith(".key")'}
          - {id: r2, effect: approve, prompts: [fs__p], approvers: [approver], when: 'args.a == "b"'}
          - {id: r3, effect: deny, sampling: ["*"], when: 'params.maxTokens > 5'}
          - {id: r4, effect: approve, elicitation: [fs], approvers: [approver]}
          - {id: r5, effect: deny, roots: [fs], identities: [bot]}
        redact:
          - {prompts: [fs__p], fields: [a]}
        """,
    )
    policy = load_policy(tmp_path)
    assert [r.kind for r in policy.rules] == ["resource", "prompt", "sampling", "elicitation", "roots"]
    grant = policy.identities["bot"].grant
    assert [scope.uris.globs for scope in grant.resources] == [("file:///Data/**",), ("demo://x/*",)]
    assert grant.prompts.globs == ("fs__*",)
    assert policy.redactions[0].kind == "prompt"
    assert str(policy.rules[0].location) == f"{tmp_path / 'p.yaml'}:9"
