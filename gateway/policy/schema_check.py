"""Checking a policy against the tools upstreams actually offer.

Owns `check_against_catalog`: for every rule with a `when`, it builds a sample
argument object from each matching tool's inputSchema (every declared property, with
a value of the declared type) and runs the condition on it. A missing field means the
condition reads a field the tool does not declare, and would fail closed in
production. It also warns about grants, rules, limits and redactions that match no
tool. For the other kinds it warns about server globs (resources, prompts, sampling,
elicitation, roots) that match no server of the catalog, and runs conditions on a sample
request (the MCP spec's sampling/elicitation params, a sample URI). `lint_policy` needs no
catalog: it warns about URI globs that also grant sibling paths (``file:///data*``). It only
reads the policy; it never changes a decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.names import split_offline
from gateway.policy.compiled import SERVER_REQUESTS, GlobSet, Grant, Policy, ResourceScope, Rule
from gateway.policy.condition import ConditionError, MissingField, activation, kind_activation
from gateway.policy.problems import Location, Problem

_SAMPLES: dict[str, Any] = {"string": "", "integer": 0, "number": 0.0, "boolean": False, "null": None}
SAMPLE_PARAMS: dict[str, dict[str, Any]] = {
    "sampling": {
        "messages": [{"role": "user", "content": {"type": "text", "text": ""}}],
        "maxTokens": 0,
        "systemPrompt": "",
        "includeContext": "none",
        "temperature": 0.0,
        "stopSequences": [""],
        "modelPreferences": {"hints": [{"name": ""}], "costPriority": 0.0, "speedPriority": 0.0},
        "metadata": {},
        "tools": [],
    },
    "elicitation": {"mode": "form", "message": "", "requestedSchema": {"type": "object", "properties": {}}, "url": ""},
    "roots": {},
}
"""Every field of each server request's params in the MCP spec (2025-11-25): a condition reading another fails."""


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
    policy: Policy,
    catalog: Mapping[str, Mapping[str, Any]],
    separator: str = "__",
    prompts: Mapping[str, Sequence[str]] | None = None,
) -> list[Problem]:
    """Problems with `policy` given `catalog` (public tool name -> inputSchema) and, when known,
    `prompts` (public prompt name -> its argument names, from a prompts/list result)."""
    problems: list[Problem] = []
    tools = sorted(catalog)
    servers = sorted({t.partition(separator)[0] for t in [*tools, *(prompts or {})] if separator in t})
    problems += _other_kinds(policy, servers, separator)
    if prompts is not None:
        problems += _prompt_checks(policy, prompts)
    for rule in policy.rules:
        if rule.kind == "tool":
            problems += _tool_rule(rule, catalog, tools, separator)
    grants = [*(e.grant for e in policy.identities.values()), *policy.roles.values()]
    for grant in grants:
        problems += _unmatched(grant.tools, tools, f"grant of {grant.kind} {grant.name!r}")
    for limit in policy.rate_limits:
        problems += _unmatched(limit.tools, tools, f"rate limit {limit.id!r}")
    for redaction in policy.redactions:
        if redaction.kind != "tool":
            continue
        problems += _unmatched(redaction.tools, tools, "redaction")
        matching = [t for t in tools if redaction.tools.matches(t)]
        declared = {name for t in matching for name in catalog[t].get("properties", {})}
        for path in redaction.fields:
            if matching and path.split(".", 1)[0] not in declared:
                message = f"redacted field {path!r} is declared by none of {', '.join(matching)}"
                problems.append(Problem(redaction.location, message, "warning"))
    return problems


def _tool_rule(rule: Rule, catalog: Mapping[str, Mapping[str, Any]], tools: list[str], separator: str) -> list[Problem]:
    """A tool rule matching no tool (warning); its condition on each matching tool's sample arguments."""
    problems: list[Problem] = []
    matching = [t for t in tools if rule.tools.matches(t)]
    if not matching:
        problems.append(Problem(rule.location, f"rule {rule.id!r} matches no tool in the catalog", "warning"))
    if rule.condition is None:
        return problems
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
            problems.append(Problem(rule.location, f"rule {rule.id!r}: condition {what} tool {tool} ({exc})", "error"))
    return problems


def _unmatched(globs: GlobSet, tools: Iterable[str], what: str, noun: str = "tool") -> list[Problem]:
    tools = list(tools)
    return [
        Problem(where, f"{what}: {glob!r} matches no {noun} in the catalog", "warning")
        for glob, where in zip(globs.globs, globs.locations, strict=True)
        if not any(GlobSet.of([glob], [where]).matches(t) for t in tools)
    ]


def _other_kinds(policy: Policy, servers: list[str], separator: str) -> list[Problem]:
    """Server globs of non-tool grants and rules that match no server; conditions on sample requests."""
    problems: list[Problem] = []
    grants: list[Grant] = [*(e.grant for e in policy.identities.values()), *policy.roles.values()]
    for grant in grants:
        problems += _no_server(grant.resources, servers, f"resource grant of {grant.kind} {grant.name!r}")
        problems += _no_prompt_server(grant.prompts, servers, separator, f"prompt grant of {grant.kind} {grant.name!r}")
    for rule in policy.rules:
        if rule.kind == "resource":
            problems += _no_server(rule.resources, servers, f"rule {rule.id!r}")
        elif rule.kind == "prompt":
            problems += _no_prompt_server(rule.tools, servers, separator, f"rule {rule.id!r}")
        elif rule.kind in SERVER_REQUESTS:
            problems += _no_server_glob(rule.tools, servers, f"rule {rule.id!r}")
        if rule.condition is not None and rule.kind != "tool" and rule.kind != "prompt":
            problems += _sample_condition(rule)
    return problems


def _prompt_checks(policy: Policy, prompts: Mapping[str, Sequence[str]]) -> list[Problem]:
    """Prompt globs matching no prompt (warnings); prompt conditions run with every declared argument."""
    names = sorted(prompts)
    problems: list[Problem] = []
    for grant in [*(e.grant for e in policy.identities.values()), *policy.roles.values()]:
        problems += _unmatched(grant.prompts, names, f"prompt grant of {grant.kind} {grant.name!r}", "prompt")
    for redaction in policy.redactions:
        if redaction.kind == "prompt":
            problems += _unmatched(redaction.tools, names, "prompt redaction", "prompt")
    for rule in policy.rules:
        if rule.kind != "prompt":
            continue
        matching = [n for n in names if rule.tools.matches(n)]
        if not matching:
            problems.append(Problem(rule.location, f"rule {rule.id!r} matches no prompt in the catalog", "warning"))
        for name in matching if rule.condition is not None else []:
            problems += _prompt_condition(rule, name, prompts[name])
    return problems


def _prompt_condition(rule: Rule, name: str, arguments: Sequence[str]) -> list[Problem]:
    assert rule.condition is not None
    variables = kind_activation(
        "prompt",
        {argument: "" for argument in arguments},
        identity_name="sample-identity",
        roles=[],
        server=name,
        name=name,
        target=name,
    )
    try:
        rule.condition.evaluate(variables)
    except ConditionError as exc:
        what = "references an argument not declared by" if isinstance(exc, MissingField) else "cannot be evaluated for"
        return [Problem(rule.location, f"rule {rule.id!r}: condition {what} prompt {name} ({exc})")]
    return []


def _no_server(scopes: Iterable[ResourceScope], servers: list[str], what: str) -> list[Problem]:
    return [p for scope in scopes for p in _no_server_glob(scope.servers, servers, what)]


def _no_server_glob(globs: GlobSet, servers: list[str], what: str) -> list[Problem]:
    if not servers:
        return []
    return [
        Problem(where, f"{what}: server {glob!r} matches no server in the catalog ({', '.join(servers)})", "warning")
        for glob, where in zip(globs.globs, globs.locations, strict=True)
        if not any(GlobSet.of([glob], [where]).matches(s) for s in servers)
    ]


def _no_prompt_server(globs: GlobSet, servers: list[str], separator: str, what: str) -> list[Problem]:
    if not servers:
        return []
    return [
        Problem(where, f"{what}: prompt glob {glob!r} names no server in the catalog", "warning")
        for glob, where in zip(globs.globs, globs.locations, strict=True)
        if not any(GlobSet.of([glob], [where]).may_match_prefix(s + separator) for s in servers)
    ]


def _sample_condition(rule: Rule) -> list[Problem]:
    """Run a resource or server-request rule's condition on a sample request of its kind."""
    assert rule.condition is not None
    target = "file:///sample" if rule.kind == "resource" else rule.kind
    variables = kind_activation(
        rule.kind,
        SAMPLE_PARAMS.get(rule.kind, {}),
        identity_name="sample-identity",
        roles=[],
        server="sample-server",
        name="sample-server",
        target=target,
    )
    try:
        rule.condition.evaluate(variables)
    except ConditionError as exc:
        what = "reads a field the MCP spec does not define for" if isinstance(exc, MissingField) else "fails on"
        return [Problem(rule.location, f"rule {rule.id!r}: condition {what} a sample {rule.kind} request ({exc})")]
    return []


def lint_policy(policy: Policy) -> list[Problem]:
    """Warnings that need no catalog: URI globs whose wildcard also covers sibling paths."""
    scopes: list[tuple[str, ResourceScope]] = []
    for grant in [*(e.grant for e in policy.identities.values()), *policy.roles.values()]:
        scopes += [(f"resource grant of {grant.kind} {grant.name!r}", s) for s in grant.resources]
    for rule in policy.rules:
        scopes += [(f"rule {rule.id!r}", s) for s in rule.resources]
    return [problem for what, scope in scopes for problem in _sibling_globs(what, scope.uris.globs, scope.location)]


def _sibling_globs(what: str, globs: Iterable[str], where: Location) -> list[Problem]:
    found = []
    for glob in globs:
        star = glob.find("*")
        if star > 0 and glob[star - 1] not in "/:" and "/" in glob[:star]:
            sibling = glob[:star] + "-secret/"
            message = f"{what}: URI glob {glob!r} also matches siblings such as {sibling!r}; end a directory with '/**'"
            found.append(Problem(where, message, "warning"))
    return found
