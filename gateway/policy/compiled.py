"""The loaded, indexed, immutable policy the engine reads.

Owns `Policy` and its parts (`GlobSet`, `Rule`, `Grant`, `RateLimit`, `Redaction`).
Globs are compiled once here: exact names go in sets and dicts, real patterns into
one regex per glob list, so lookups never walk 10,000 grants. A `Policy` is never
mutated after construction; a hot reload builds a new one. The only mutable part is
`cache`, the engine's memo, which depends on nothing but the policy itself.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.policy.condition import Condition
from gateway.policy.problems import Location
from gateway.types import ApprovalScope, Effect, Identity, RequestKind

_GLOB_META = frozenset("*?[")
CACHE_MAX = 200_000
"""Entries in `Policy.cache` before it is cleared; bounds memory when names are unbounded."""


@dataclass(frozen=True, slots=True, eq=False)
class GlobSet:
    """fnmatch globs (case-sensitive), with the source line of each."""

    globs: tuple[str, ...]
    locations: tuple[Location, ...]
    exact: frozenset[str]
    regex: re.Pattern[str] | None

    @classmethod
    def of(cls, globs: Iterable[str], locations: Iterable[Location]) -> GlobSet:
        globs = tuple(globs)
        patterns = [g for g in globs if _GLOB_META & set(g)]
        exact = frozenset(g for g in globs if not _GLOB_META & set(g))
        regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)) if patterns else None
        return cls(globs, tuple(locations), exact, regex)

    @property
    def is_exact(self) -> bool:
        return self.regex is None

    def matches(self, name: str) -> bool:
        return name in self.exact or (self.regex is not None and self.regex.match(name) is not None)


@dataclass(frozen=True, slots=True, eq=False)
class Grant:
    """The grants of one identity or role; `rule_id` is what a plain allow reports."""

    kind: str  # "identity" | "role"
    name: str
    tools: GlobSet
    location: Location

    @property
    def rule_id(self) -> str:
        return f"grant:{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True, eq=False)
class IdentityEntry:
    name: str
    roles: frozenset[str]
    grant: Grant


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    id: str
    effect: Effect
    tools: GlobSet
    identities: GlobSet
    roles: frozenset[str]
    condition: Condition | None
    reason: str
    approvers: tuple[str, ...]
    location: Location
    scope: ApprovalScope | None = None
    """For effect approve: how far a granted approval reaches (None: one exact call)."""

    def applies_statically(self, identity_name: str, roles: frozenset[str], tool: str) -> str | None:
        """None when the rule applies ignoring `when`; otherwise why it does not."""
        if not self.tools.matches(tool):
            return f"tool {tool} matches none of {list(self.tools.globs)}"
        if not self.identities.matches(identity_name):
            return f"identity {identity_name} matches none of {list(self.identities.globs)}"
        if self.roles and not self.roles & roles:
            return f"identity holds none of the roles {sorted(self.roles)}"
        return None

    @property
    def explained_reason(self) -> str:
        return self.reason or f"{self.effect} by rule {self.id}"


@dataclass(frozen=True, slots=True, eq=False)
class RateLimit:
    id: str
    tools: GlobSet
    identities: GlobSet
    limit: int
    window_s: float
    location: Location


@dataclass(frozen=True, slots=True, eq=False)
class Redaction:
    tools: GlobSet
    fields: tuple[str, ...]
    location: Location


@dataclass(frozen=True, eq=False)
class Policy:
    """Everything the gateway enforces, merged from every file of the policy directory."""

    files: tuple[Path, ...]
    identities: Mapping[str, IdentityEntry]
    roles: Mapping[str, Grant]
    rules: tuple[Rule, ...]
    rate_limits: tuple[RateLimit, ...]
    redactions: tuple[Redaction, ...]
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    """Memo of derived, policy-only facts (engine plans, per-tool lookups); never policy meaning."""
    _rules_by_tool: dict[str, tuple[Rule, ...]] = field(init=False, repr=False)
    _globbed_rules: tuple[Rule, ...] = field(init=False, repr=False)
    _order: dict[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_tool: dict[str, list[Rule]] = {}
        globbed: list[Rule] = []
        for rule in self.rules:
            if rule.tools.is_exact:
                for name in rule.tools.exact:
                    by_tool.setdefault(name, []).append(rule)
            else:
                globbed.append(rule)
        object.__setattr__(self, "_rules_by_tool", {k: tuple(v) for k, v in by_tool.items()})
        object.__setattr__(self, "_globbed_rules", tuple(globbed))
        object.__setattr__(self, "_order", {id(rule): i for i, rule in enumerate(self.rules)})

    def remember(self, key: Any, value: Any) -> Any:
        """Store a derived fact in `cache` (cleared when it grows past CACHE_MAX) and return it."""
        if len(self.cache) >= CACHE_MAX:
            self.cache.clear()
        self.cache[key] = value
        return value

    def roles_of(self, name: str) -> frozenset[str]:
        """Roles the policy files give identity `name` (none for an unknown identity)."""
        entry = self.identities.get(name)
        return entry.roles if entry is not None else frozenset()

    def effective_roles(self, identity: Identity) -> frozenset[str]:
        """Roles on the `Identity` value plus those the policy gives its name."""
        return identity.roles | self.roles_of(identity.name) if identity.roles else self.roles_of(identity.name)

    def grant_for(self, identity: Identity, tool: str) -> Grant | None:
        """The grant that gives `tool` to `identity`: its own first, then its roles by name."""
        entry = self.identities.get(identity.name)
        if entry is not None and entry.grant.tools.matches(tool):
            return entry.grant
        for role in sorted(self.effective_roles(identity)):
            grant = self.roles.get(role)
            if grant is not None and grant.tools.matches(tool):
                return grant
        return None

    def is_granted(self, identity: Identity, name: str, kind: RequestKind = "tool", *, server: str = "") -> bool:
        """Whether `name` of `kind` is granted at all (rules may still deny it); filters the list answers."""
        if kind != "tool":
            return False
        return self.grant_for(identity, name) is not None

    def rules_for_tool(self, tool: str) -> tuple[Rule, ...]:
        """Rules whose tool globs match `tool`, in file order."""
        key = ("rules_for_tool", tool)
        found = self.cache.get(key)
        if found is None:
            exact = self._rules_by_tool.get(tool, ())
            globbed = [r for r in self._globbed_rules if r.tools.matches(tool)]
            order = self._order
            found = self.remember(key, tuple(sorted((*exact, *globbed), key=lambda r: order[id(r)])))
        return found

    def rate_limits_for(self, identity_name: str, tool: str) -> tuple[RateLimit, ...]:
        key = ("rate_limits_for", identity_name, tool)
        found = self.cache.get(key)
        if found is None:
            found = self.remember(
                key,
                tuple(rl for rl in self.rate_limits if rl.tools.matches(tool) and rl.identities.matches(identity_name)),
            )
        return found

    def redact_fields(self, public_tool_name: str, kind: RequestKind = "tool") -> frozenset[str]:
        """Dotted argument paths the audit writer must never store in clear for this tool."""
        if kind != "tool":
            return frozenset()
        key = ("redact_fields", public_tool_name)
        found = self.cache.get(key)
        if found is None:
            found = self.remember(
                key, frozenset(f for r in self.redactions if r.tools.matches(public_tool_name) for f in r.fields)
            )
        return found
