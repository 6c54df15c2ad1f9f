"""The policy engine: a pure `decide()` and its `explain()`.

Semantics (also in policies/README.md):

1. Deny by default. A call whose tool is not granted to the identity, directly
   (``identities.<name>.grants``) or through any of its roles, is denied with rule id
   ``default-deny``; rules are not consulted for it.
2. A rule applies when its tool glob matches the public tool name, its identity glob
   matches the identity name, the identity holds one of its ``roles`` (if any are
   listed) and its CEL ``when`` (if any) is true. Applying rules contribute their
   effect; precedence is deny > approve > allow. The decision's ``rule_ids`` are the
   ids of the rules with the winning effect, in file order, and its reason joins
   theirs. For approve, ``approver_roles`` is the union of their approvers and the
   ``approval_scope`` the narrowest of their scopes (none if any rule states none).
3. A granted call that no rule applies to is allowed, with rule id
   ``grant:identity:<name>`` or ``grant:role:<role>`` for the grant that allowed it
   (the identity's own grants first, then its roles in name order).
4. A ``when`` that cannot be evaluated (missing field, type error, non-bool result)
   fails closed: it counts as a deny by that rule, with a reason saying so.
5. Rate limits are stateful and live in `ratelimit.py`, not here.
6. Other kinds (`ToolCall.kind`): a resource read is granted by a grant's ``resources``
   (server glob + URI glob over the normalised upstream URI; a URI `uri.py` refuses is never
   granted), a prompt get by its ``prompts`` globs; both then go through their kind's rules
   like a tool. A completion is allowed exactly when its ref (prompt, or resource template
   URI) is granted; rules do not apply to it. Sampling, elicitation and roots requests of a
   server are allowed by default (``grant:server-request:<grant>``) when the identity holds a
   tool grant of that server; otherwise an applying ``allow``/``approve`` rule opens them and
   without one they are denied; rules of their kind refine them like tool rules.

An identity's roles are those on the `Identity` value plus those the policy gives its
name. Nothing here does I/O or keeps state besides the per-policy memo in
`Policy.cache`: the plan for an (identity, roles, tool) triple (for other kinds: kind,
identity, roles, server, target) is computed once, and only `when` conditions run per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.policy.compiled import SERVER_REQUESTS, Grant, Policy, Rule
from gateway.policy.condition import ConditionError, activation, kind_activation
from gateway.policy.uri import normalise_uri
from gateway.types import ApprovalScope, Decision, Identity, ScopeMatch, ToolCall

DEFAULT_DENY = "default-deny"
_PLAN = "plan"


@dataclass(frozen=True, slots=True)
class _Plan:
    """What is known about an (identity, roles, tool) triple before looking at arguments."""

    decision: Decision | None  # final unless some applicable rule has a condition
    grant: Grant | None
    rules: tuple[Rule, ...]  # statically applicable rules, file order
    roles: tuple[str, ...]
    subject: str = ""  # other kinds: what rules matched (normalised URI, prompt name, server)


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule as `explain` saw it: did it apply to this call, and why (not)."""

    rule: Rule
    applies: bool
    why: str


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    identity: str
    roles: tuple[str, ...]
    tool: str
    grant: str | None
    """Rule id of the grant giving the tool to the identity; None means default deny."""
    traces: tuple[RuleTrace, ...]
    kind: str = "tool"
    subject: str = ""
    """What rules were matched against: the normalised URI ("" if refused), the name, or the server."""


def decide(policy: Policy, call: ToolCall, identity: Identity) -> Decision:
    """The policy's answer for `call` by `identity`. Pure: same inputs, same Decision."""
    if call.kind != "tool":
        return _decide_kind(policy, call, identity)
    key = (_PLAN, identity.name, identity.roles, call.name)
    plan: _Plan | None = policy.cache.get(key)
    if plan is None:
        plan = policy.remember(key, _make_plan(policy, identity, call.name))
    if plan.decision is not None:
        return plan.decision
    variables = activation(
        call.arguments,
        identity_name=identity.name,
        roles=list(plan.roles),
        tool=call.name,
        server=call.server,
        upstream_tool=call.tool,
    )
    matched, failed = _evaluate(plan.rules, variables)
    return _combine(plan.grant, matched, failed, identity.name, call.name)


def _evaluate(rules: Iterable[Rule], variables: dict[str, Any]) -> tuple[list[Rule], dict[str, str]]:
    """The rules whose conditions hold (or cannot be evaluated: those are in `failed`, fail closed)."""
    matched: list[Rule] = []
    failed: dict[str, str] = {}
    for rule in rules:
        if rule.condition is None:
            matched.append(rule)
            continue
        try:
            if rule.condition.evaluate(variables):
                matched.append(rule)
        except ConditionError as exc:
            matched.append(rule)
            failed[rule.id] = str(exc)
    return matched, failed


def _decide_kind(policy: Policy, call: ToolCall, identity: Identity) -> Decision:
    """`decide()` for resources, prompts, completions and server requests (module docstring, item 6)."""
    key = (_PLAN, call.kind, identity.name, identity.roles, call.server, call.name, call.tool, _ref_type(call))
    plan: _Plan | None = policy.cache.get(key)
    if plan is None:
        plan = policy.remember(key, _make_kind_plan(policy, identity, call))
    if plan.decision is not None:
        return plan.decision
    variables = _kind_variables(call, identity.name, list(plan.roles), plan.subject)
    matched, failed = _evaluate(plan.rules, variables)
    return _combine_kind(call, plan.grant, matched, failed, identity.name)


def _kind_variables(call: ToolCall, identity: str, roles: list[str], subject: str) -> dict[str, Any]:
    target = subject if call.kind == "resource" else call.tool
    return kind_activation(
        call.kind,
        call.arguments,
        identity_name=identity,
        roles=roles,
        server=call.server,
        name=call.name,
        target=target,
    )


def _ref_type(call: ToolCall) -> str:
    """A completion's ref type ("" for other kinds, or when absent or not a string)."""
    if call.kind != "completion":
        return ""
    ref = call.arguments.get("ref_type")
    return ref if isinstance(ref, str) else ""


def _label(call: ToolCall) -> str:
    """How a decision's reason names the request."""
    if call.kind == "resource":
        return f"resource {call.tool} of server {call.server}"
    if call.kind in SERVER_REQUESTS:
        return f"{call.tool or call.kind} request of server {call.server}"
    return f"{call.kind} {call.name}"


def _subject(call: ToolCall) -> str | None:
    """What the rules of the call's kind match: the normalised URI, the public name, or the server.

    None (decided deny) for a refused URI, an empty name or server, or a kind this engine does not know.
    """
    if call.kind == "resource":
        return normalise_uri(call.tool) if call.server else None
    if call.kind in SERVER_REQUESTS:
        return call.server or None
    return call.name or None if call.kind in ("prompt", "completion") else None


def _kind_grant(policy: Policy, identity: Identity, call: ToolCall, subject: str) -> Grant | None:
    if call.kind == "resource":
        return policy.resource_grant_for(identity, call.server, subject)
    if call.kind == "prompt":
        return policy.prompt_grant_for(identity, subject)
    if call.kind == "completion":
        return _completion_grant(policy, identity, call)
    if call.kind in SERVER_REQUESTS:
        return policy.server_request_grant_for(identity, call.server)
    return None


def _completion_grant(policy: Policy, identity: Identity, call: ToolCall) -> Grant | None:
    """The grant of a completion's ref: the prompt (public name) or the template (the server's URI)."""
    ref = _ref_type(call)
    if ref == "ref/prompt":
        return policy.prompt_grant_for(identity, call.name)
    normal = normalise_uri(call.tool) if ref == "ref/resource" else None
    return policy.resource_grant_for(identity, call.server, normal) if normal is not None else None


def _make_kind_plan(policy: Policy, identity: Identity, call: ToolCall) -> _Plan:
    roles = policy.effective_roles(identity)
    subject = _subject(call)
    if subject is None:
        why = "its URI is refused (see policies/README.md)" if call.kind == "resource" else "not a request policy knows"
        return _Plan(Decision("deny", (DEFAULT_DENY,), f"{_label(call)}: {why}"), None, (), ())
    grant = _kind_grant(policy, identity, call, subject)
    opens = call.kind in SERVER_REQUESTS  # rules may open a server request no tool grant covers
    if grant is None and not opens:
        reason = f"{_label(call)}: not granted to identity {identity.name}"
        return _Plan(Decision("deny", (DEFAULT_DENY,), reason), None, (), ())
    if call.kind == "completion":
        return _Plan(_granted(call, grant, identity.name), grant, (), ())
    rules = tuple(
        r
        for r in policy.rules_of_kind(call.kind)
        if r.target_miss(call.kind, call.name, call.server, subject) is None
        and r.who_miss(identity.name, roles) is None
    )
    plan = _Plan(None, grant, rules, tuple(sorted(roles)), subject)
    if any(r.condition is not None for r in rules):
        return plan
    return _Plan(_combine_kind(call, grant, rules, {}, identity.name), grant, rules, plan.roles, subject)


def _combine_kind(
    call: ToolCall, grant: Grant | None, matched: Sequence[Rule], failed: dict[str, str], identity: str
) -> Decision:
    """`_combine` for other kinds: with no rule applying, the grant decides (for a server request
    without one, only an applying allow/approve rule opens it)."""
    if matched:
        return _combine(grant, matched, failed, identity, call.name)
    if grant is None:
        reason = f"{_label(call)}: identity {identity} holds no tool grant of that server and no rule allows it"
        return Decision("deny", (DEFAULT_DENY,), reason)
    return _granted(call, grant, identity)


def _granted(call: ToolCall, grant: Grant | None, identity: str) -> Decision:
    if grant is None:
        return Decision("deny", (DEFAULT_DENY,), f"{_label(call)}: not granted to identity {identity}")
    via = "directly" if grant.kind == "identity" else f"via role {grant.name}"
    if call.kind in SERVER_REQUESTS:
        reason = f"{_label(call)}: identity {identity} holds a tool grant of that server {via}"
        return Decision("allow", (f"grant:server-request:{grant.kind}:{grant.name}",), reason)
    what = f"{_label(call)} (completion of {_ref_type(call)})" if call.kind == "completion" else _label(call)
    return Decision("allow", (grant.rule_id,), f"{what} is granted to identity {identity} {via}")


def explain(policy: Policy, call: ToolCall, identity: Identity) -> Explanation:
    """`decide()` plus every rule of the policy and why it did or did not apply to this call."""
    roles = policy.effective_roles(identity)
    grant, subject, variables = _explain_inputs(policy, call, identity, roles)
    traces: list[RuleTrace] = []
    for rule in policy.rules:
        why = rule.target_miss(call.kind, call.name, call.server, subject) or rule.who_miss(identity.name, roles)
        if why is not None:
            traces.append(RuleTrace(rule, False, why))
        elif rule.condition is None:
            traces.append(RuleTrace(rule, True, f"{call.kind}, identity and roles match; no condition"))
        else:
            try:
                value = rule.condition.evaluate(variables)
                traces.append(RuleTrace(rule, value, f"condition {rule.condition.source!r} is {str(value).lower()}"))
            except ConditionError as exc:
                traces.append(RuleTrace(rule, True, f"condition could not be evaluated ({exc}): counts as deny"))
    return Explanation(
        decision=decide(policy, call, identity),
        identity=identity.name,
        roles=tuple(sorted(roles)),
        tool=call.name,
        grant=grant.rule_id if grant is not None else None,
        traces=tuple(traces),
        kind=call.kind,
        subject=subject,
    )


def _explain_inputs(
    policy: Policy, call: ToolCall, identity: Identity, roles: frozenset[str]
) -> tuple[Grant | None, str, dict[str, Any]]:
    """(grant, what rules match, condition variables) for `explain`."""
    if call.kind == "tool":
        variables = activation(
            call.arguments,
            identity_name=identity.name,
            roles=sorted(roles),
            tool=call.name,
            server=call.server,
            upstream_tool=call.tool,
        )
        return policy.grant_for(identity, call.name), call.name, variables
    subject = _subject(call)
    grant = _kind_grant(policy, identity, call, subject) if subject is not None else None
    return grant, subject or "", _kind_variables(call, identity.name, sorted(roles), subject or "")


def _make_plan(policy: Policy, identity: Identity, tool: str) -> _Plan:
    roles = policy.effective_roles(identity)
    grant = policy.grant_for(identity, tool)
    if grant is None:
        reason = f"tool {tool} is not granted to identity {identity.name}"
        return _Plan(Decision("deny", (DEFAULT_DENY,), reason), None, (), ())
    rules = tuple(r for r in policy.rules_for_tool(tool) if r.applies_statically(identity.name, roles, tool) is None)
    final = None if any(r.condition is not None for r in rules) else _combine(grant, rules, {}, identity.name, tool)
    return _Plan(final, grant, rules, tuple(sorted(roles)))


def _narrowest(scopes: Iterable[ApprovalScope | None]) -> ApprovalScope | None:
    """The scope several approving rules agree on: tool-wide only if all say so, the shortest ttl."""
    found = list(scopes)
    if not found or any(s is None for s in found):
        return None
    known = [s for s in found if s is not None]
    match: ScopeMatch = "tool" if all(s.match == "tool" for s in known) else "exact"
    return ApprovalScope(match, min(s.ttl_s for s in known))


def _combine(
    grant: Grant | None, matched: Iterable[Rule], failed: dict[str, str], identity: str, tool: str
) -> Decision:
    """Apply precedence deny > approve > allow to the rules that matched a granted call."""
    by_effect: dict[str, list[Rule]] = {"deny": [], "approve": [], "allow": []}
    for rule in matched:
        by_effect["deny" if rule.id in failed else rule.effect].append(rule)
    if by_effect["deny"]:
        rules = by_effect["deny"]
        reasons = [
            f"rule {r.id}: condition could not be evaluated ({failed[r.id]}); denied (fail closed)"
            if r.id in failed
            else r.explained_reason
            for r in rules
        ]
        return Decision("deny", tuple(r.id for r in rules), "; ".join(reasons))
    if by_effect["approve"]:
        rules = by_effect["approve"]
        approvers = tuple(sorted({role for r in rules for role in r.approvers}))
        reason = "; ".join(r.explained_reason for r in rules)
        return Decision("approve", tuple(r.id for r in rules), reason, approvers, _narrowest(r.scope for r in rules))
    if by_effect["allow"]:
        rules = by_effect["allow"]
        return Decision("allow", tuple(r.id for r in rules), "; ".join(r.explained_reason for r in rules))
    if grant is None:  # not reached from decide(): ungranted calls never get here
        return Decision("deny", (DEFAULT_DENY,), f"tool {tool} is not granted to identity {identity}")
    via = "directly" if grant.kind == "identity" else f"via role {grant.name}"
    return Decision("allow", (grant.rule_id,), f"tool {tool} is granted to identity {identity} {via}")
