"""`scope` on approve rules: parsed, refused where it does not belong, carried by the decision."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.policy import Policy, PolicyError, decide, load_policy
from gateway.types import ApprovalScope
from tests.gateway.policy.conftest import call, who, write

BASE = """
identities:
  bot: {roles: [writer]}
roles:
  writer: {grants: ["notes__*"]}
  lead: {}
"""


def test_scope_is_carried_by_the_approve_decision(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy(
        BASE
        + """
rules:
  - id: echo-for-a-while
    effect: approve
    tools: [notes__echo]
    approvers: [lead]
    scope: {match: tool, ttl_s: 600}
  - id: publish
    effect: approve
    tools: [notes__add_note]
    approvers: [lead]
"""
    )
    echo = decide(policy, call("notes__echo", text="x"), who(policy, "bot"))
    assert (echo.effect, echo.approval_scope) == ("approve", ApprovalScope("tool", 600))
    publish = decide(policy, call("notes__add_note", title="t"), who(policy, "bot"))
    assert (publish.effect, publish.approval_scope) == ("approve", None)


def test_several_approving_rules_take_the_narrowest_scope(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy(
        BASE
        + """
rules:
  - {id: wide, effect: approve, tools: ["notes__*"], approvers: [lead], scope: {match: tool, ttl_s: 600}}
  - {id: short, effect: approve, tools: [notes__echo], approvers: [lead], scope: {match: tool, ttl_s: 60}}
  - {id: exact, effect: approve, tools: [notes__list_notes], approvers: [lead], scope: {ttl_s: 900}}
  - {id: none, effect: approve, tools: [notes__add_note], approvers: [lead]}
"""
    )
    bot = who(policy, "bot")
    assert decide(policy, call("notes__echo"), bot).approval_scope == ApprovalScope("tool", 60)
    assert decide(policy, call("notes__list_notes"), bot).approval_scope == ApprovalScope("exact", 600)
    assert decide(policy, call("notes__add_note"), bot).approval_scope is None  # one rule states no scope


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        (
            "{id: a, effect: deny, tools: [x], scope: {match: tool, ttl_s: 5}}",
            "scope is only allowed on effect approve",
        ),
        ("{id: a, effect: approve, tools: [x], approvers: [lead], scope: {match: all, ttl_s: 5}}", "'exact' or 'tool'"),
        ("{id: a, effect: approve, tools: [x], approvers: [lead], scope: {match: tool, ttl_s: 0}}", "greater than 0"),
        ("{id: a, effect: approve, tools: [x], approvers: [lead], scope: {match: tool}}", "ttl_s"),
        ("{id: a, effect: approve, tools: [x], approvers: [lead], scope: {ttl_s: 5, for: me}}", "unknown key 'for'"),
    ],
)
def test_bad_scopes_are_rejected_with_file_and_line(tmp_path: Path, rule: str, fragment: str) -> None:
    path = write(tmp_path, "p.yaml", "roles:\n  lead: {}\nrules:\n  - " + rule + "\n")
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path)
    problems = [str(p) for p in info.value.problems]
    assert any(p.startswith(f"{path}:") and fragment in p for p in problems), problems
