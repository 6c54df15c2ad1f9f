"""decide() and explain(): default deny, grants, precedence, conditions, approvers."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import pytest

from gateway.policy import Policy, decide, explain
from gateway.types import Identity
from tests.gateway.policy.conftest import call, who

BASE = """
identities:
  agent: {roles: [reader], grants: ["notes__*"]}
  other: {roles: [writer]}
roles:
  reader: {grants: ["time__*"]}
  writer: {grants: ["time__get_current_time", "git__*"]}
  approver: {}
  boss: {}
"""

MakePolicy = Callable[[str], Policy]


def test_ungranted_tool_is_denied_by_default(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE)
    d = decide(policy, call("git__git_status", repo_path="/r"), who(policy, "agent"))
    assert d.effect == "deny"
    assert d.rule_ids == ("default-deny",)
    assert d.reason == "tool git__git_status is not granted to identity agent"


def test_unknown_identity_has_nothing(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE)
    assert policy.roles_of("nobody") == frozenset()
    d = decide(policy, call("time__get_current_time", timezone="UTC"), Identity("nobody"))
    assert d.rule_ids == ("default-deny",)


def test_grant_via_role_names_the_role(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE)
    d = decide(policy, call("time__convert_time"), who(policy, "agent"))
    assert (d.effect, d.rule_ids) == ("allow", ("grant:role:reader",))
    assert "via role reader" in d.reason


def test_direct_grant_names_the_identity_and_wins_over_roles(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE.replace('grants: ["notes__*"]', 'grants: ["notes__*", "time__get_current_time"]'))
    d = decide(policy, call("time__get_current_time"), who(policy, "agent"))
    assert d.rule_ids == ("grant:identity:agent",)


def test_roles_on_the_identity_value_count_too(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE)
    d = decide(policy, call("git__git_log"), Identity("stranger", frozenset({"writer"})))
    assert d.rule_ids == ("grant:role:writer",)


def test_is_granted_filters_tools(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE)
    agent = who(policy, "agent")
    assert policy.is_granted(agent, "time__anything")
    assert policy.is_granted(agent, "notes__add_note")
    assert not policy.is_granted(agent, "git__git_status")
    assert not policy.is_granted(agent, "timex__x")


def rules_yaml(effects: tuple[str | None, ...]) -> str:
    lines = ["rules:"]
    for i, effect in enumerate(effects):
        if effect is None:
            continue
        lines += [
            f"  - id: r{i}-{effect}",
            f"    effect: {effect}",
            '    tools: ["time__*"]',
            f"    reason: reason {i}",
        ]
        if effect == "approve":
            lines.append(f"    approvers: [{'approver' if i % 2 else 'boss'}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("effects", list(product([None, "allow", "deny", "approve"], repeat=3)))
def test_precedence_deny_over_approve_over_allow(make_policy: MakePolicy, effects: tuple[str | None, ...]) -> None:
    policy = make_policy(BASE + rules_yaml(effects))
    d = decide(policy, call("time__get_current_time", timezone="UTC"), who(policy, "agent"))
    present = [e for e in effects if e is not None]
    winner = next((e for e in ("deny", "approve", "allow") if e in present), None)
    if winner is None:
        assert (d.effect, d.rule_ids) == ("allow", ("grant:role:reader",))
        return
    expected_ids = tuple(f"r{i}-{e}" for i, e in enumerate(effects) if e == winner)
    assert d.effect == winner
    assert d.rule_ids == expected_ids
    assert d.reason == "; ".join(f"reason {rid[1]}" for rid in expected_ids)
    if winner == "approve":
        want = {"approver" if i % 2 else "boss" for i, e in enumerate(effects) if e == "approve"}
        assert d.approver_roles == tuple(sorted(want))
    else:
        assert d.approver_roles == ()


def test_rules_never_grant(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE + rules_yaml(("allow",)).replace("time__*", "git__*"))
    d = decide(policy, call("git__git_status"), who(policy, "agent"))
    assert d.rule_ids == ("default-deny",)


def test_rule_identity_and_role_filters(make_policy: MakePolicy) -> None:
    policy = make_policy(
        BASE
        + """
rules:
  - {id: only-other, effect: deny, tools: ["time__*"], identities: ["oth*"]}
  - {id: only-readers, effect: approve, tools: ["time__*"], roles: [reader], approvers: [approver]}
"""
    )
    tool = call("time__get_current_time")
    assert decide(policy, tool, who(policy, "agent")).rule_ids == ("only-readers",)
    assert decide(policy, tool, who(policy, "other")).rule_ids == ("only-other",)


COND = """
rules:
  - id: big-log
    effect: deny
    tools: ["git__git_log"]
    when: "args.max_count > 100"
    reason: too many
  - id: self-only
    effect: approve
    tools: ["git__*"]
    when: 'identity.name == "other" && "writer" in identity.roles && server == "git" && upstream_tool == "git_show"'
    approvers: [approver]
"""


def test_condition_true_and_false(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE + COND)
    other = who(policy, "other")
    assert decide(policy, call("git__git_log", max_count=500), other).rule_ids == ("big-log",)
    assert decide(policy, call("git__git_log", max_count=5), other).rule_ids == ("grant:role:writer",)
    assert decide(policy, call("git__git_show", revision="HEAD"), other).effect == "approve"
    assert decide(policy, call("git__git_status"), other).effect == "allow"


@pytest.mark.parametrize(
    ("arguments", "why"),
    [({}, "no field 'max_count'"), ({"max_count": "lots"}, "No such overload")],
)
def test_condition_error_fails_closed(make_policy: MakePolicy, arguments: dict[str, object], why: str) -> None:
    policy = make_policy(BASE + COND)
    d = decide(policy, call("git__git_log", **arguments), who(policy, "other"))
    assert d.effect == "deny"
    assert d.rule_ids == ("big-log",)
    assert "condition could not be evaluated" in d.reason
    assert why in d.reason


def test_non_bool_condition_fails_closed(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE + 'rules:\n  - {id: weird, effect: allow, tools: ["time__*"], when: "args.n + 1"}\n')
    d = decide(policy, call("time__get_current_time", n=1), who(policy, "agent"))
    assert (d.effect, d.rule_ids) == ("deny", ("weird",))
    assert "not bool" in d.reason


def test_decide_is_repeatable_with_memo(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE + COND)
    other = who(policy, "other")
    first = [decide(policy, call("git__git_log", max_count=n), other) for n in (1, 500, 1, 500)]
    assert [d.effect for d in first] == ["allow", "deny", "allow", "deny"]


def test_redact_fields(make_policy: MakePolicy) -> None:
    policy = make_policy(
        BASE + 'redact:\n  - {tools: ["notes__*"], fields: [secret, auth.token]}\n  - {tools: [x], fields: [y]}\n'
    )
    assert policy.redact_fields("notes__add_note") == frozenset({"secret", "auth.token"})
    assert policy.redact_fields("time__get_current_time") == frozenset()


def test_explain_lists_every_rule_and_why(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE + COND)
    result = explain(policy, call("git__git_log", max_count=500), who(policy, "other"))
    assert result.decision == decide(policy, call("git__git_log", max_count=500), who(policy, "other"))
    assert result.grant == "grant:role:writer"
    assert result.roles == ("writer",)
    traces = {t.rule.id: t for t in result.traces}
    assert set(traces) == {"big-log", "self-only"}
    assert traces["big-log"].applies and "is true" in traces["big-log"].why
    assert not traces["self-only"].applies and "is false" in traces["self-only"].why
    assert traces["big-log"].rule.location.line > 1


def test_explain_reports_condition_errors_and_default_deny(make_policy: MakePolicy) -> None:
    policy = make_policy(BASE + COND)
    result = explain(policy, call("git__git_log"), who(policy, "agent"))
    assert result.grant is None
    assert result.decision.rule_ids == ("default-deny",)
    assert "could not be evaluated" in {t.rule.id: t for t in result.traces}["big-log"].why
