"""A starter policy from a classified catalog: the text of one policy file and its test cases.

What it suggests, per tool (one rule each, id ``<server>.<tool>.<placement>``, the reason naming
the classes and their evidence):

- read-only: granted to the reader role (and the operator role); an ``allow`` rule says why.
- writes or handles-secrets: granted to the operator role only; an ``allow`` rule says why.
- destructive or executes-code: granted to the operator role and held by an ``approve`` rule
  whose approvers are the approver role. Approve rules hold the tool for every identity granted
  it (also by other files: a narrowing, which `review.py` reports); allow rules name their roles,
  so identities of other files keep their decisions and rule ids.
- open-world, handles-secrets, and annotations contradicted by other evidence: flagged, in a
  comment above the rule and in its reason.

Three example identities (one per role) make the tests runnable; the file says to replace them.
The test file has a case per rule (the role that gets the tool) plus a default-deny case for
each tool readers do not get.

Must never: read or write files, or look at an existing policy (`review.py` compares). Pure:
same catalog and options, same text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import mcp_types as types

from gateway.risk.classify import Risk, classify
from gateway.risk.evidence import RiskClass
from gateway.types import Decision

Placement = Literal["reader", "operator", "approve"]
_GLOB_SAFE = re.compile(r"^[A-Za-z0-9._/-]+$")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class CatalogTool:
    """One tool as the gateway publishes it: public name, upstream server, and its definition."""

    public_name: str
    server: str
    tool: types.Tool


@dataclass(frozen=True, slots=True)
class Roles:
    reader: str = "reader"
    operator: str = "operator"
    approver: str = "approver"

    @classmethod
    def prefixed(cls, prefix: str) -> Roles:
        return cls(f"{prefix}reader", f"{prefix}operator", f"{prefix}approver")

    def example_identity(self, role: str) -> str:
        return f"example-{role}"


@dataclass(frozen=True, slots=True)
class Suggested:
    """One tool's place in the suggestion."""

    entry: CatalogTool
    risk: Risk
    placement: Placement
    rule_id: str
    flags: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "tool": self.entry.public_name,
            "server": self.entry.server,
            "placement": self.placement,
            "rule": self.rule_id,
            "flags": list(self.flags),
            "risk": self.risk.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Suggestion:
    policy_text: str
    tests_text: str
    tools: tuple[Suggested, ...]
    skipped: tuple[str, ...] = field(default=())
    """Tools left out (names no glob can spell): default deny keeps them closed."""


def place(risk: Risk) -> Placement:
    if risk.held:
        return "approve"
    if risk.has(RiskClass.READ_ONLY) and not risk.has(RiskClass.HANDLES_SECRETS):
        return "reader"
    return "operator"


def flags(risk: Risk) -> tuple[str, ...]:
    found = []
    if risk.has(RiskClass.OPEN_WORLD):
        found.append("OPEN-WORLD: reaches outside systems (" + "; ".join(risk.reasons(RiskClass.OPEN_WORLD)) + ")")
    if risk.has(RiskClass.HANDLES_SECRETS):
        found.append("SECRETS: " + "; ".join(risk.reasons(RiskClass.HANDLES_SECRETS)))
    found += [f"CONFLICT: {c}" for c in risk.conflicts]
    return tuple(found)


Stricter = Mapping[tuple[str, str], Decision]
"""(identity, public tool name) -> the decision of other files' rules that is stricter than the suggestion's."""


def suggest(
    catalog: Iterable[CatalogTool],
    roles: Roles = Roles(),
    define_approver: bool = True,
    stricter: Stricter | None = None,
) -> Suggestion:
    """The starter policy for `catalog` (sorted by public name, so the text is stable).

    `stricter` names the calls where rules of the other policy files win over the suggestion
    (deny over approve, approve over allow): their cases expect that decision, and a comment
    above the rule says which rule wins."""
    stricter = stricter or {}
    placed: list[Suggested] = []
    skipped: list[str] = []
    for entry in sorted(catalog, key=lambda e: e.public_name):
        if not _GLOB_SAFE.match(entry.public_name):
            skipped.append(entry.public_name)
            continue
        risk = classify(entry.tool)
        placement = place(risk)
        rule_id = _ID_UNSAFE.sub("-", f"{entry.server}.{entry.tool.name}.{placement}")
        placed.append(Suggested(entry, risk, placement, rule_id, flags(risk)))
    return Suggestion(
        _policy_text(placed, skipped, roles, define_approver, stricter),
        _tests_text(placed, roles, stricter),
        tuple(placed),
        tuple(skipped),
    )


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _one_line(text: str) -> str:
    """Text for a YAML comment: whatever an upstream put in it, no line break survives."""
    return " ".join(text.splitlines())


def _reason(s: Suggested, roles: Roles) -> str:
    why = "; ".join(str(e) for e in s.risk.evidence if e.risk is not None and e.risk in s.risk.classes)
    action = {
        "reader": f"granted to {roles.reader} and {roles.operator}",
        "operator": f"granted to {roles.operator} only",
        "approve": f"held until someone with role {roles.approver} approves",
    }[s.placement]
    flagged = f" [FLAGGED: {', '.join(flag.split(':', 1)[0].lower() for flag in s.flags)}]" if s.flags else ""
    return f"{s.risk.label}: {action} ({why}){flagged}"


def _policy_text(
    placed: list[Suggested], skipped: list[str], roles: Roles, define_approver: bool, stricter: Stricter
) -> str:
    readers = [s.entry.public_name for s in placed if s.placement == "reader"]
    operators = [s.entry.public_name for s in placed]
    lines = [
        "# Suggested by `warden policy suggest` from the live tool catalog: review every rule before adopting it.",
        "# Classes come from each tool's MCP annotations (the server's claims), then its name, description and",
        "# input schema. read-only -> reader; writes -> operator; destructive or executes-code -> held for approval.",
        "# FLAGGED lines mark open-world tools, tools handling secrets, and annotations other evidence contradicts.",
    ]
    lines += [f"# not suggested (a name no glob can spell; default deny keeps it closed): {_q(n)}" for n in skipped]
    lines += ["", "# Example identities the tests use: give your agents these roles, then remove or rename these."]
    lines += ["identities:"]
    lines += [f"  {roles.example_identity(r)}:\n    roles: [{r}]" for r in (roles.reader, roles.operator)]
    lines += [f"  {roles.example_identity(roles.approver)}:\n    roles: [{roles.approver}]", "", "roles:"]
    for role, grants in ((roles.reader, readers), (roles.operator, operators)):
        lines.append(f"  {role}:")
        lines += ["    grants:", *(f"      - {name}" for name in grants)] if grants else ["    grants: []"]
    if define_approver:
        lines.append(f"  {roles.approver}: {{}}   # approves held calls; calls no tools")
    lines += ["", "rules:"]
    for s in placed:
        lines += [f"  # FLAGGED {_one_line(flag)}" for flag in s.flags]
        lines += [
            f"  # NOTE for {who}: {d.effect} by rule {', '.join(d.rule_ids)} of another file wins over this rule"
            for (who, tool), d in sorted(stricter.items())
            if tool == s.entry.public_name
        ]
        lines += [
            f"  - id: {s.rule_id}",
            f"    effect: {'approve' if s.placement == 'approve' else 'allow'}",
            f"    tools: [{s.entry.public_name}]",
        ]
        if s.placement == "approve":
            lines.append(f"    approvers: [{roles.approver}]")
        else:  # allow rules name the roles they explain: other files' identities keep their own rule ids
            granted = [roles.reader, roles.operator] if s.placement == "reader" else [roles.operator]
            lines.append(f"    roles: [{', '.join(granted)}]")
        lines += [f"    reason: {_q(_reason(s, roles))}", ""]
    if not placed:
        lines[-1] = "rules: []"
    return "\n".join(lines).rstrip("\n") + "\n"


def _tests_text(placed: list[Suggested], roles: Roles, stricter: Stricter) -> str:
    if not placed:
        return "# The catalog was empty: nothing to test.\ncases: []\n"
    lines = ["# Generated with the policy beside it: one case per rule, and default deny where readers stop.", "cases:"]
    reader = roles.example_identity(roles.reader)
    for s in placed:
        name = s.entry.public_name
        caller = roles.example_identity(roles.reader if s.placement == "reader" else roles.operator)
        args = json.dumps(example_arguments(s.entry.tool.input_schema), ensure_ascii=False, sort_keys=True)
        expect = _expect(stricter.get((caller, name)), s, roles)
        lines += [f"  - name: {_q(f'{name} ({s.risk.label}) for {caller}')}", f"    identity: {caller}"]
        lines += [f"    tool: {name}", f"    arguments: {args}", f"    expect: {expect}"]
        if s.placement != "reader":
            lines += [f"  - name: {_q(f'{name} is not granted to {reader}')}", f"    identity: {reader}"]
            lines += [f"    tool: {name}", f"    arguments: {args}", "    expect: {effect: deny, rule: default-deny}"]
    return "\n".join(lines) + "\n"


def _expect(override: Decision | None, s: Suggested, roles: Roles) -> str:
    if override is not None:
        approvers = f", approvers: [{', '.join(override.approver_roles)}]" if override.effect == "approve" else ""
        return f"{{effect: {override.effect}, rule: {override.rule_ids[0]}{approvers}}}"
    if s.placement == "approve":
        return f"{{effect: approve, rule: {s.rule_id}, approvers: [{roles.approver}]}}"
    return f"{{effect: allow, rule: {s.rule_id}}}"


def example_arguments(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Arguments that fill every required property with a placeholder of its type (defaults and
    enums first), so conditions of other rules see a plausible call rather than failing closed."""
    props = (schema or {}).get("properties") or {}
    required = [r for r in (schema or {}).get("required") or [] if isinstance(r, str)]
    found: dict[str, Any] = {}
    for name in required:
        prop = props.get(name) if isinstance(props, Mapping) else None
        found[name] = _example(prop if isinstance(prop, Mapping) else {})
    return found


def _example(prop: Mapping[str, Any]) -> Any:
    if "default" in prop:
        return prop["default"]
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return prop["enum"][0]
    kind = prop.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    return {"integer": 1, "number": 1, "boolean": False, "array": [], "object": {}, "null": None}.get(
        kind if isinstance(kind, str) else "", "example"
    )
