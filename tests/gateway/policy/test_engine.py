"""decide() and explain(): default deny, grants, precedence, conditions, approvers."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import pytest

from gateway.policy import Policy, decide, explain
from gateway.types import ApprovalScope, Identity, ToolCall
from tests.gateway.policy.conftest import call, prompt, resource, server_request, who

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


# ---- resources, prompts, completions, server requests ----------------------------------------

KINDS = """
identities:
  agent:
    roles: [reader]
    grants: ["fs__read_file"]
    resources: {fs: ["file:///data/**"]}
  other:
    roles: [writer]
  nobody-tools:
    resources: {fs: ["file:///data/**"]}
roles:
  reader:
    prompts: ["fs__review", "fs__login"]
    resources: {docs: ["demo://docs/*", "demo://tpl/{id}"]}
  writer:
    grants: ["git__*"]
    prompts: ["fs__*"]
  approver: {}
rules:
  - id: deny-keys
    effect: deny
    resources: {fs: ["file:///data/**"]}
    when: 'uri.endsWith(".key")'
  - id: approve-review
    effect: approve
    prompts: [fs__review]
    approvers: [approver]
    scope: {match: tool, ttl_s: 60}
  - id: deny-long-review
    effect: deny
    prompts: [fs__review]
    when: 'args.code.size() > 10'
  - id: deny-big-sampling
    effect: deny
    sampling: ["*"]
    when: 'params.maxTokens > 1000'
  - id: approve-elicit
    effect: approve
    elicitation: ["fs"]
    approvers: [approver]
  - id: open-unprefixed-sampling
    effect: allow
    sampling: ["conf"]
    identities: [agent]
  - id: tool-named-like-prompt
    effect: deny
    tools: ["fs__review"]
redact:
  - prompts: ["fs__login"]
    fields: [password]
  - tools: ["fs__login"]
    fields: [token]
"""


def test_resource_under_granted_directory_is_allowed(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    d = decide(policy, resource("fs", "file:///data/report.txt"), who(policy, "agent"))
    assert (d.effect, d.rule_ids) == ("allow", ("grant:identity:agent",))


@pytest.mark.parametrize(
    "uri",
    [
        "file:///data/../etc/passwd",
        "file:///data/%2e%2e/etc/passwd",
        "file:///data/%2E%2e/%2e%2E/etc/passwd",
        "file:///data/x%2F..%2F..%2Fetc%2Fpasswd",
        "file:///data/%252e%252e/etc/passwd",
        "file:///data-secret/passwords",
        "file:///data",
        "file:///DATA/report.txt",
        "file:///data\\..\\etc\\passwd",
        "file://evil/data/x",
        "file:////data/x",
        "http:///data/x",
        "/data/x",
        "",
    ],
)
def test_resource_uri_tricks_are_denied_by_default(make_policy: MakePolicy, uri: str) -> None:
    policy = make_policy(KINDS)
    d = decide(policy, resource("fs", uri), who(policy, "agent"))
    assert (d.effect, d.rule_ids) == ("deny", ("default-deny",))
    assert not policy.is_granted(who(policy, "agent"), uri, "resource", server="fs")


def test_a_refused_uri_says_so_in_the_reason(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    d = decide(policy, resource("fs", "file:///data/a%2Fb"), who(policy, "agent"))
    assert "refused" in d.reason


def test_case_of_scheme_and_authority_does_not_matter(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    assert decide(policy, resource("fs", "FILE:///data/a"), who(policy, "agent")).effect == "allow"
    assert decide(policy, resource("docs", "DEMO://DOCS/a"), who(policy, "agent")).effect == "allow"


def test_resource_grants_are_per_server(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    assert decide(policy, resource("other-fs", "file:///data/a"), agent).rule_ids == ("default-deny",)
    assert decide(policy, resource("docs", "file:///data/a"), agent).rule_ids == ("default-deny",)
    assert decide(policy, resource("docs", "demo://docs/a"), agent).rule_ids == ("grant:role:reader",)
    assert decide(policy, resource("docs", "demo://docs/a/b"), agent).rule_ids == ("default-deny",)


def test_resource_grants_are_per_identity(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    for name in ("other", "stranger"):
        d = decide(policy, resource("fs", "file:///data/a"), who(policy, name))
        assert d.rule_ids == ("default-deny",)


def test_the_public_uri_is_not_what_is_matched(make_policy: MakePolicy) -> None:
    """A client forging the public name cannot reach a URI: policy matches (server, upstream URI)."""
    policy = make_policy(KINDS)
    forged = ToolCall(
        "fs+file:///data/a", "fs", "file:///etc/passwd", {"uri": "file:///etc/passwd"}, "c", kind="resource"
    )
    assert decide(policy, forged, who(policy, "agent")).rule_ids == ("default-deny",)


def test_resource_rule_condition_on_the_normalised_uri(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    assert decide(policy, resource("fs", "file:///data/tls/a.key"), agent).rule_ids == ("deny-keys",)
    # the rule sees the normalised URI: an encoded dot cannot dodge endsWith(".key")
    assert decide(policy, resource("fs", "file:///data/tls/a%2Ekey"), agent).rule_ids == ("deny-keys",)
    assert decide(policy, resource("fs", "file:///data/tls/./a.key"), agent).rule_ids == ("deny-keys",)


def test_prompt_grants_and_default_deny(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    assert decide(policy, prompt("fs__login", user="u"), agent).rule_ids == ("grant:role:reader",)
    d = decide(policy, prompt("fs__other"), agent)
    assert (d.effect, d.rule_ids) == ("deny", ("default-deny",))
    assert decide(policy, prompt("fs__other"), who(policy, "other")).rule_ids == ("grant:role:writer",)


def test_prompt_held_for_approval_with_scope(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    d = decide(policy, prompt("fs__review", code="x"), who(policy, "agent"))
    assert (d.effect, d.rule_ids, d.approver_roles) == ("approve", ("approve-review",), ("approver",))
    assert d.approval_scope == ApprovalScope("tool", 60)


def test_prompt_argument_condition_deny_beats_approve(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    d = decide(policy, prompt("fs__review", code="x" * 11), who(policy, "agent"))
    assert (d.effect, d.rule_ids) == ("deny", ("deny-long-review",))


def test_prompt_condition_missing_argument_fails_closed(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    d = decide(policy, prompt("fs__review"), who(policy, "agent"))
    assert d.effect == "deny" and d.rule_ids == ("deny-long-review",)
    assert "fail closed" in d.reason


def test_tool_rules_and_prompt_rules_do_not_cross(make_policy: MakePolicy) -> None:
    """A tool and a prompt may share a public name; each kind sees only its own rules and grants."""
    policy = make_policy(KINDS + "\n")
    writer = who(policy, "other")
    # writer holds prompt fs__* but no tool fs__review: the tool is default-denied, the deny rule on the
    # *tool* fs__review does not touch the prompt (only the prompt rules do)
    assert decide(policy, call("fs__review"), writer).rule_ids == ("default-deny",)
    d = decide(policy, prompt("fs__review", code="x"), writer)
    assert d.rule_ids == ("approve-review",)
    assert not policy.is_granted(writer, "fs__review")
    assert policy.is_granted(writer, "fs__review", "prompt")


def test_is_granted_per_kind(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    assert policy.is_granted(agent, "fs__read_file")
    assert not policy.is_granted(agent, "fs__read_file", "prompt")
    assert policy.is_granted(agent, "file:///data/x", "resource", server="fs")
    assert not policy.is_granted(agent, "file:///data/x", "resource")  # no server: nothing
    assert policy.is_granted(agent, "demo://tpl/{id}", "resource", server="docs")  # a template
    assert policy.is_granted(agent, "fs", "sampling") and not policy.is_granted(agent, "git", "sampling")
    assert not policy.is_granted(agent, "fs__review", "completion")


def test_completion_follows_the_prompt_grant(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    args = {"ref_type": "ref/prompt", "argument": {"name": "code", "value": "x"}}
    ok = ToolCall("fs__review", "fs", "review", args, "c", kind="completion")
    # approve-review holds the prompt get, not its completion: completions reveal only what lists show
    assert decide(policy, ok, agent).rule_ids == ("grant:role:reader",)
    hidden = ToolCall("fs__secret", "fs", "secret", args, "c", kind="completion")
    assert decide(policy, hidden, agent).rule_ids == ("default-deny",)


def test_completion_follows_the_template_grant(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    args = {"ref_type": "ref/resource", "argument": {"name": "id", "value": "1"}}
    ok = ToolCall("docs+demo://tpl/{id}", "docs", "demo://tpl/{id}", args, "c", kind="completion")
    assert decide(policy, ok, agent).effect == "allow"
    for template in ("demo://other/{id}", "demo://tpl/{id}/../../x/{y}", "demo://tpl/%7Bid%7D%2F"):
        call_ = ToolCall(f"docs+{template}", "docs", template, args, "c", kind="completion")
        assert decide(policy, call_, agent).rule_ids == ("default-deny",)


@pytest.mark.parametrize("ref_type", [None, "", "ref/tool", 7, "REF/PROMPT"])
def test_completion_with_a_bad_ref_type_is_denied(make_policy: MakePolicy, ref_type: object) -> None:
    policy = make_policy(KINDS)
    args = {} if ref_type is None else {"ref_type": ref_type}
    c = ToolCall("fs__review", "fs", "review", args, "c", kind="completion")
    assert decide(policy, c, who(policy, "agent")).rule_ids == ("default-deny",)


def test_completion_of_a_prompt_does_not_use_a_template_grant(make_policy: MakePolicy) -> None:
    """The ref type is part of the plan: a prompt grant never answers a resource ref (and back)."""
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    as_resource = ToolCall("fs__review", "fs", "fs__review", {"ref_type": "ref/resource"}, "c", kind="completion")
    assert decide(policy, as_resource, agent).rule_ids == ("default-deny",)
    as_prompt = ToolCall(
        "demo://tpl/{id}", "docs", "demo://tpl/{id}", {"ref_type": "ref/prompt"}, "c", kind="completion"
    )
    assert decide(policy, as_prompt, agent).rule_ids == ("default-deny",)


def test_server_requests_default_to_the_tool_grant_of_that_server(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    agent, writer = who(policy, "agent"), who(policy, "other")
    assert decide(policy, server_request("roots", "fs"), agent).rule_ids == ("grant:server-request:identity:agent",)
    assert decide(policy, server_request("roots", "git"), writer).rule_ids == ("grant:server-request:role:writer",)
    assert decide(policy, server_request("roots", "git"), agent).rule_ids == ("default-deny",)
    assert decide(policy, server_request("roots", "fs"), writer).rule_ids == ("default-deny",)
    # resources or prompts of a server are no tool grant: no call of its own could have caused the request
    assert decide(policy, server_request("sampling", "fs", maxTokens=1), who(policy, "nobody-tools")).effect == "deny"
    assert decide(policy, server_request("roots", "fs"), Identity("stranger")).rule_ids == ("default-deny",)


def test_a_server_whose_name_prefixes_another_is_not_granted(make_policy: MakePolicy) -> None:
    policy = make_policy("identities:\n  a: {grants: ['fs__read', 'fsx*']}\n")
    assert decide(policy, server_request("roots", "fs"), who(policy, "a")).effect == "allow"
    assert decide(policy, server_request("roots", "fsx"), who(policy, "a")).effect == "allow"
    assert decide(policy, server_request("roots", "f"), who(policy, "a")).effect == "deny"
    assert decide(policy, server_request("roots", "fs_"), who(policy, "a")).effect == "deny"


def test_server_request_rules_deny_and_approve(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    assert decide(policy, server_request("sampling", "fs", maxTokens=10), agent).effect == "allow"
    d = decide(policy, server_request("sampling", "fs", maxTokens=5000), agent)
    assert (d.effect, d.rule_ids) == ("deny", ("deny-big-sampling",))
    d = decide(policy, server_request("elicitation", "fs", message="?"), agent)
    assert (d.effect, d.rule_ids, d.approver_roles) == ("approve", ("approve-elicit",), ("approver",))


def test_sampling_condition_fails_closed_on_missing_params(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    d = decide(policy, server_request("sampling", "fs"), who(policy, "agent"))
    assert d.rule_ids == ("deny-big-sampling",) and "fail closed" in d.reason


def test_an_allow_rule_opens_a_server_without_a_prefixed_tool_grant(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    assert decide(policy, server_request("sampling", "conf", maxTokens=1), who(policy, "agent")).rule_ids == (
        "open-unprefixed-sampling",
    )
    # the opening rule is for agent only; and only for sampling
    assert decide(policy, server_request("sampling", "conf", maxTokens=1), who(policy, "other")).effect == "deny"
    assert decide(policy, server_request("roots", "conf"), who(policy, "agent")).effect == "deny"
    # deny still beats the opening allow
    assert decide(policy, server_request("sampling", "conf", maxTokens=9999), who(policy, "agent")).effect == "deny"


def test_kinds_do_not_share_plans(make_policy: MakePolicy) -> None:
    """The memo is keyed by kind: the same name decided as tool, prompt and resource stays apart."""
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    assert decide(policy, call("fs__read_file"), agent).effect == "allow"
    assert decide(policy, prompt("fs__read_file"), agent).effect == "deny"
    assert decide(policy, server_request("roots", "fs"), agent).effect == "allow"
    assert decide(policy, call("fs__read_file"), agent).effect == "allow"
    assert decide(policy, resource("fs", "fs__read_file"), agent).effect == "deny"


def test_redaction_of_prompt_arguments_and_completions(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    assert policy.redact_fields("fs__login", "prompt") == frozenset({"password"})
    assert policy.redact_fields("fs__login") == frozenset({"token"})
    assert policy.redact_fields("fs__login", "completion") == frozenset(
        {"argument.value", "context.arguments.password"}
    )
    assert policy.redact_fields("fs__review", "completion") == frozenset()
    assert policy.redact_fields("fs+file:///data/x", "resource") == frozenset()


def test_explain_names_kind_subject_and_rules(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    e = explain(policy, resource("fs", "file:///data/../data/a.key"), who(policy, "agent"))
    assert (e.kind, e.subject, e.grant) == ("resource", "file:///data/a.key", "grant:identity:agent")
    assert e.decision.rule_ids == ("deny-keys",)
    by_id = {t.rule.id: t for t in e.traces}
    assert by_id["deny-keys"].applies
    assert not by_id["approve-review"].applies and "targets prompt" in by_id["approve-review"].why
    e = explain(policy, server_request("sampling", "fs", maxTokens=5), who(policy, "agent"))
    assert {t.rule.id for t in e.traces if t.applies} == set()
    assert e.decision.effect == "allow"


def test_decide_is_pure_for_every_kind(make_policy: MakePolicy) -> None:
    policy = make_policy(KINDS)
    agent = who(policy, "agent")
    requests = [
        resource("fs", "file:///data/a"),
        resource("fs", "file:///data/a.key"),
        prompt("fs__review", code="x"),
        server_request("sampling", "fs", maxTokens=5000),
    ]
    first = [decide(policy, r, agent) for r in requests]
    assert [decide(policy, r, agent) for r in reversed(requests)] == list(reversed(first))


@pytest.mark.parametrize(
    "request_",
    [
        ToolCall("fs", "", "sampling/createMessage", {}, "c", kind="sampling"),  # no server
        ToolCall("x", "", "file:///data/a", {"uri": "file:///data/a"}, "c", kind="resource"),
        ToolCall("", "fs", "", {}, "c", kind="prompt"),
        ToolCall("fs__read_file", "fs", "read_file", {}, "c", kind="bogus"),  # type: ignore[arg-type]
    ],
)
def test_malformed_requests_fail_closed(make_policy: MakePolicy, request_: ToolCall) -> None:
    opened = "rules:\n  - {id: open-all, effect: allow, sampling: ['*']}\n"  # would open any server's sampling
    policy = make_policy(KINDS.replace("rules:\n", opened, 1))
    assert decide(policy, request_, who(policy, "agent")).rule_ids == ("default-deny",)
    assert explain(policy, request_, who(policy, "agent")).decision.effect == "deny"
