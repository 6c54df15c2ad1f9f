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

An identity's roles are those on the `Identity` value plus those the policy gives its
name. Nothing here does I/O or keeps state besides the per-policy memo in
`Policy.cache`: the plan for an (identity, roles, tool) triple is computed once, and
only `when` conditions run per call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.policy.compiled import Grant, Policy, Rule
from gateway.policy.condition import ConditionError, activation
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


def decide(policy: Policy, call: ToolCall, identity: Identity) -> Decision:
    """The policy's answer for `call` by `identity`. Pure: same inputs, same Decision."""
    if call.kind != "tool":
        return Decision("deny", (DEFAULT_DENY,), f"{call.kind} {call.name} is not granted to identity {identity.name}")
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
    matched: list[Rule] = []
    failed: dict[str, str] = {}
    for rule in plan.rules:
        if rule.condition is None:
            matched.append(rule)
            continue
        try:
            if rule.condition.evaluate(variables):
                matched.append(rule)
        except ConditionError as exc:
            matched.append(rule)
            failed[rule.id] = str(exc)
    return _combine(plan.grant, matched, failed, identity.name, call.name)


def explain(policy: Policy, call: ToolCall, identity: Identity) -> Explanation:
    """`decide()` plus every rule of the policy and why it did or did not apply to this call."""
    roles = policy.effective_roles(identity)
    grant = policy.grant_for(identity, call.name)
    variables = activation(
        call.arguments,
        identity_name=identity.name,
        roles=sorted(roles),
        tool=call.name,
        server=call.server,
        upstream_tool=call.tool,
    )
    traces: list[RuleTrace] = []
    for rule in policy.rules:
        why = rule.applies_statically(identity.name, roles, call.name)
        if why is not None:
            traces.append(RuleTrace(rule, False, why))
        elif rule.condition is None:
            traces.append(RuleTrace(rule, True, "tool, identity and roles match; no condition"))
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
    )


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
