"""Turning a policy directory into a `Policy`, or into problems with file:line.

Owns reading every ``*.yaml``/``*.yml`` file directly in the directory (not ``tests/``),
validating each against `model.PolicyFile`, the checks that span files (ids and names
unique across files, referenced roles exist), and compiling the result. It either
returns a complete `Policy` or raises `PolicyError` listing every problem found; it
never returns a partial policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.policy.compiled import (
    GlobSet,
    Grant,
    IdentityEntry,
    Policy,
    RateLimit,
    Redaction,
    ResourceScope,
    Rule,
)
from gateway.policy.condition import KIND_VARIABLES, Condition
from gateway.policy.model import TARGET_KIND, PolicyFile, RoleSpec, RuleSpec
from gateway.policy.problems import Location, PolicyError, Problem
from gateway.policy.source import YamlDocument, read_yaml
from gateway.policy.uri import UriGlobSet
from gateway.types import ApprovalScope

PATTERNS = ("*.yaml", "*.yml")
M = TypeVar("M", bound=BaseModel)


def policy_files(directory: Path) -> list[Path]:
    return sorted({p for pattern in PATTERNS for p in directory.glob(pattern) if p.is_file()})


def load_policy(directory: Path) -> Policy:
    """Load and merge every policy file in `directory`; raise `PolicyError` on any problem."""
    directory = Path(directory)
    if not directory.is_dir():
        raise PolicyError([Problem(Location(directory, 1), "policy directory does not exist")])
    files = policy_files(directory)
    if not files:
        raise PolicyError([Problem(Location(directory, 1), "no *.yaml policy files in directory")])
    problems: list[Problem] = []
    parsed: list[tuple[YamlDocument, PolicyFile]] = []
    for file in files:
        doc, found = read_yaml(file)
        problems += found
        if doc is not None:
            spec = validate(doc, PolicyFile, problems)
            if spec is not None:
                parsed.append((doc, spec))
    if problems:
        raise PolicyError(problems)
    problems += _cross_file_problems(parsed)
    if problems:
        raise PolicyError(problems)
    return _compile(tuple(files), parsed)


def validate(doc: YamlDocument, model: type[M], problems: list[Problem]) -> M | None:
    """Validate `doc.data` against a pydantic model, appending one problem per error."""
    data = {} if doc.data is None else doc.data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append(Problem(doc.at(loc), _message(loc, error)))
        return None


def _message(loc: Sequence[str | int], error: Any) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if error["type"] == "extra_forbidden":
        return f"unknown key {loc[-1]!r}" + (f" in {where.rsplit('.', 1)[0]}" if "." in where else "")
    if error["type"] == "missing":
        return f"missing required key {where}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _cross_file_problems(parsed: list[tuple[YamlDocument, PolicyFile]]) -> list[Problem]:
    problems, first = _duplicate_problems(parsed)
    roles = {name for (kind, name) in first if kind == "role"}
    return problems + _unknown_role_problems(parsed, roles)


def _duplicate_problems(
    parsed: list[tuple[YamlDocument, PolicyFile]],
) -> tuple[list[Problem], dict[tuple[str, str], Location]]:
    """A problem for every name defined twice across files, and where each (kind, name) was first defined."""
    problems: list[Problem] = []
    first: dict[tuple[str, str], Location] = {}

    def claim(kind: str, name: str, where: Location) -> None:
        if (kind, name) in first:
            problems.append(Problem(where, f"duplicate {kind} {name!r} (first defined at {first[kind, name]})"))
        else:
            first[kind, name] = where

    for doc, spec in parsed:
        for name in spec.identities:
            claim("identity", name, doc.at(("identities", name)))
        for name in spec.roles:
            claim("role", name, doc.at(("roles", name)))
        for i, rule in enumerate(spec.rules):
            claim("id", rule.id, doc.at(("rules", i, "id")))
        for i, limit in enumerate(spec.rate_limits):
            claim("id", limit.id, doc.at(("rate_limits", i, "id")))
    return problems, first


def _unknown_role_problems(parsed: list[tuple[YamlDocument, PolicyFile]], roles: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for doc, spec in parsed:
        for name, identity in spec.identities.items():
            for j, role in enumerate(identity.roles):
                if role not in roles:
                    problems.append(Problem(doc.at(("identities", name, "roles", j)), f"unknown role {role!r}"))
        for i, rule in enumerate(spec.rules):
            for key, names in (("roles", rule.roles), ("approvers", rule.approvers)):
                for j, role in enumerate(names):
                    if role not in roles:
                        where = doc.at(("rules", i, key, j))
                        problems.append(Problem(where, f"rule {rule.id!r}: unknown role {role!r} in {key}"))
    return problems


def _globs(doc: YamlDocument, path: tuple[str | int, ...], globs: Sequence[str]) -> GlobSet:
    return GlobSet.of(globs, (doc.at((*path, i)) for i in range(len(globs))))


def _scopes(doc: YamlDocument, path: tuple[str | int, ...], spec: dict[str, list[str]]) -> tuple[ResourceScope, ...]:
    return tuple(
        ResourceScope(_globs(doc, (*path, server), [server]), UriGlobSet.of(uris), doc.at((*path, server)))
        for server, uris in spec.items()
    )


def _grant(doc: YamlDocument, kind: str, name: str, spec: RoleSpec) -> Grant:
    section = "identities" if kind == "identity" else "roles"
    return Grant(
        kind,
        name,
        _globs(doc, (section, name, "grants"), spec.grants),
        doc.at((section, name)),
        prompts=_globs(doc, (section, name, "prompts"), spec.prompts),
        resources=_scopes(doc, (section, name, "resources"), spec.resources),
    )


def _rule(doc: YamlDocument, i: int, r: RuleSpec) -> Rule:
    target = r.target
    names = getattr(r, target) if target != "resources" else []
    kind = TARGET_KIND[target]
    return Rule(
        id=r.id,
        effect=r.effect,
        tools=_globs(doc, ("rules", i, target), names),
        identities=_globs(doc, ("rules", i, "identities"), r.identities),
        roles=frozenset(r.roles),
        condition=Condition.compile(r.when, KIND_VARIABLES[kind]) if r.when is not None else None,
        reason=r.reason,
        approvers=tuple(sorted(set(r.approvers))),
        location=doc.at(("rules", i)),
        scope=ApprovalScope(r.scope.match, r.scope.ttl_s) if r.scope is not None else None,
        kind=kind,  # type: ignore[arg-type]  # TARGET_KIND values are RequestKind literals
        resources=_scopes(doc, ("rules", i, "resources"), r.resources or {}),
    )


def _compile(files: tuple[Path, ...], parsed: list[tuple[YamlDocument, PolicyFile]]) -> Policy:
    identities: dict[str, IdentityEntry] = {}
    roles: dict[str, Grant] = {}
    rules: list[Rule] = []
    limits: list[RateLimit] = []
    redactions: list[Redaction] = []
    for doc, spec in parsed:
        for name, ident in spec.identities.items():
            identities[name] = IdentityEntry(name, frozenset(ident.roles), _grant(doc, "identity", name, ident))
        for name, role in spec.roles.items():
            roles[name] = _grant(doc, "role", name, role)
        rules += [_rule(doc, i, r) for i, r in enumerate(spec.rules)]
        for i, rl in enumerate(spec.rate_limits):
            limits.append(
                RateLimit(
                    id=rl.id,
                    tools=_globs(doc, ("rate_limits", i, "tools"), rl.tools),
                    identities=_globs(doc, ("rate_limits", i, "identities"), rl.identities),
                    limit=rl.limit,
                    window_s=rl.window_s,
                    location=doc.at(("rate_limits", i)),
                )
            )
        for i, red in enumerate(spec.redact):
            key, kind = ("tools", "tool") if red.tools is not None else ("prompts", "prompt")
            names = _globs(doc, ("redact", i, key), getattr(red, key))
            redactions.append(Redaction(names, tuple(red.fields), doc.at(("redact", i)), kind))  # type: ignore[arg-type]
    return Policy(files, identities, roles, tuple(rules), tuple(limits), tuple(redactions))
