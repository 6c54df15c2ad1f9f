"""Checking a policy against the tools upstreams actually offer.

Owns `check_against_catalog`: for every rule with a `when`, it builds a sample
argument object from each matching tool's inputSchema (every declared property, with
a value of the declared type) and runs the condition on it. A missing field means the
condition reads a field the tool does not declare, and would fail closed in
production. It also warns about grants, rules, limits and redactions that match no
tool. It only reads the policy; it never changes a decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.names import split_offline
from gateway.policy.compiled import GlobSet, Policy
from gateway.policy.condition import ConditionError, MissingField, activation
from gateway.policy.problems import Problem

_SAMPLES: dict[str, Any] = {"string": "", "integer": 0, "number": 0.0, "boolean": False, "null": None}


def sample_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An argument object with every declared property set to a type-correct value."""
    value = _sample(schema, schema, depth=0)
    return value if isinstance(value, dict) else {}


def _sample(schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > 8:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return _sample(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            typed = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            return _sample((typed or options)[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties", {})
        return {name: _sample(sub, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [_sample(schema.get("items", {}), root, depth + 1)] if "items" in schema else []
    return _SAMPLES.get(kind, "") if isinstance(kind, str) else ""


def check_against_catalog(
    policy: Policy, catalog: Mapping[str, Mapping[str, Any]], separator: str = "__"
) -> list[Problem]:
    """Problems with `policy` given `catalog` (public tool name -> inputSchema)."""
    problems: list[Problem] = []
    tools = sorted(catalog)
    for rule in policy.rules:
        matching = [t for t in tools if rule.tools.matches(t)]
        if not matching:
            problems.append(Problem(rule.location, f"rule {rule.id!r} matches no tool in the catalog", "warning"))
        if rule.condition is None:
            continue
        for tool in matching:
            server, upstream = split_offline(tool, separator)
            args = sample_arguments(catalog[tool])
            variables = activation(
                args, identity_name="sample-identity", roles=[], tool=tool, server=server, upstream_tool=upstream
            )
            try:
                rule.condition.evaluate(variables)
            except ConditionError as exc:
                missing = isinstance(exc, MissingField)
                what = "references a field not in the inputSchema of" if missing else "cannot be evaluated for"
                problems.append(
                    Problem(rule.location, f"rule {rule.id!r}: condition {what} tool {tool} ({exc})", "error")
                )
    grants = [*(e.grant for e in policy.identities.values()), *policy.roles.values()]
    for grant in grants:
        problems += _unmatched(grant.tools, tools, f"grant of {grant.kind} {grant.name!r}")
    for limit in policy.rate_limits:
        problems += _unmatched(limit.tools, tools, f"rate limit {limit.id!r}")
    for redaction in policy.redactions:
        problems += _unmatched(redaction.tools, tools, "redaction")
        matching = [t for t in tools if redaction.tools.matches(t)]
        declared = {name for t in matching for name in catalog[t].get("properties", {})}
        for path in redaction.fields:
            if matching and path.split(".", 1)[0] not in declared:
                message = f"redacted field {path!r} is declared by none of {', '.join(matching)}"
                problems.append(Problem(redaction.location, message, "warning"))
    return problems


def _unmatched(globs: GlobSet, tools: Iterable[str], what: str) -> list[Problem]:
    tools = list(tools)
    return [
        Problem(where, f"{what}: {glob!r} matches no tool in the catalog", "warning")
        for glob, where in zip(globs.globs, globs.locations, strict=True)
        if not any(GlobSet.of([glob], [where]).matches(t) for t in tools)
    ]
