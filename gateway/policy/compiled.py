"""The loaded, indexed, immutable policy the engine reads.

Owns `Policy` and its parts (`GlobSet`, `ResourceScope`, `Rule`, `Grant`, `RateLimit`, `Redaction`).
A grant holds tool, prompt and resource globs; a rule targets one kind of request (`Rule.kind`);
tool rules alone are indexed by tool name, so other kinds never slow the tool path.
Globs are compiled once here: exact names go in sets and dicts, real patterns into
one regex per glob list, so lookups never walk 10,000 grants. A `Policy` is never
mutated after construction; a hot reload builds a new one. The only mutable part is
`cache`, the engine's memo, which depends on nothing but the policy itself.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.policy.condition import Condition
from gateway.policy.problems import Location
from gateway.policy.uri import UriGlobSet, normalise_uri
from gateway.types import ApprovalScope, Effect, Identity, RequestKind

_GLOB_META = frozenset("*?[")
TOOL_SEPARATOR = "__"
"""How a prefixed server's tools are named (``<server>__<tool>``): a tool grant "of a server" is one that
can match such a name. With another `tool_separator`, open server requests with `allow` rules."""
SERVER_REQUESTS = frozenset({"sampling", "elicitation", "roots"})
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

    def may_match_prefix(self, prefix: str) -> bool:
        """Whether some name starting with `prefix` may match: an exact name with it, or a glob whose
        literal start is compatible with it (``*``, ``time_*`` and ``time__get*`` for ``time__``)."""
        if any(name.startswith(prefix) for name in self.exact):
            return True
        for glob in self.globs:
            cut = next((i for i, c in enumerate(glob) if c in _GLOB_META), None)
            if cut is not None and (glob[:cut].startswith(prefix) or prefix.startswith(glob[:cut])):
                return True
        return False


def empty_globs() -> GlobSet:
    return GlobSet.of((), ())


@dataclass(frozen=True, slots=True, eq=False)
class ResourceScope:
    """URI globs over the resources of the servers one server glob matches."""

    servers: GlobSet
    uris: UriGlobSet
    location: Location

    def matches(self, server: str, normal_uri: str) -> bool:
        return self.servers.matches(server) and self.uris.matches(normal_uri)


def _any_scope(scopes: Iterable[ResourceScope], server: str, normal_uri: str) -> bool:
    return any(scope.matches(server, normal_uri) for scope in scopes)


@dataclass(frozen=True, slots=True, eq=False)
class Grant:
    """The grants of one identity or role; `rule_id` is what a plain allow reports."""

    kind: str  # "identity" | "role"
    name: str
    tools: GlobSet
    location: Location
    prompts: GlobSet = field(default_factory=empty_globs)
    resources: tuple[ResourceScope, ...] = ()

    def grants_resource(self, server: str, normal_uri: str) -> bool:
        return _any_scope(self.resources, server, normal_uri)

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
    kind: RequestKind = "tool"
    """What the rule targets; `tools` holds its name globs (tool, prompt) or server globs (server requests)."""
    resources: tuple[ResourceScope, ...] = ()
    """For kind resource: server glob + URI globs."""

    def applies_statically(self, identity_name: str, roles: frozenset[str], tool: str) -> str | None:
        """None when a tool rule applies to tool `tool` ignoring `when`; otherwise why it does not."""
        return self.target_miss("tool", tool, "", "") or self.who_miss(identity_name, roles)

    def target_miss(self, kind: str, name: str, server: str, subject: str) -> str | None:
        """None when the rule targets this request (`subject`: the normalised URI for resources)."""
        if kind == "completion":
            return "rules do not apply to completions (the ref's grant decides)"
        if self.kind != kind:
            return f"targets {self.kind} requests, not {kind}"
        if kind == "resource":
            if _any_scope(self.resources, server, subject):
                return None
            return f"resource {server}:{subject} matches none of {self.resource_globs}"
        if kind in SERVER_REQUESTS:
            return None if self.tools.matches(server) else f"server {server} matches none of {list(self.tools.globs)}"
        return None if self.tools.matches(name) else f"{kind} {name} matches none of {list(self.tools.globs)}"

    def who_miss(self, identity_name: str, roles: frozenset[str]) -> str | None:
        if not self.identities.matches(identity_name):
            return f"identity {identity_name} matches none of {list(self.identities.globs)}"
        if self.roles and not self.roles & roles:
            return f"identity holds none of the roles {sorted(self.roles)}"
        return None

    @property
    def resource_globs(self) -> dict[str, list[str]]:
        return {"|".join(s.servers.globs): list(s.uris.globs) for s in self.resources}

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
    kind: RequestKind = "tool"
    """tool: `tools` are tool globs; prompt: prompt-name globs."""


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
            if rule.kind != "tool":
                continue
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

    def _grant_where(self, identity: Identity, test: Callable[[Grant], bool]) -> Grant | None:
        """The first grant passing `test`, in `grant_for` order."""
        entry = self.identities.get(identity.name)
        if entry is not None and test(entry.grant):
            return entry.grant
        for role in sorted(self.effective_roles(identity)):
            grant = self.roles.get(role)
            if grant is not None and test(grant):
                return grant
        return None

    def prompt_grant_for(self, identity: Identity, prompt: str) -> Grant | None:
        """The grant that gives public prompt `prompt` to `identity`."""
        return self._grant_where(identity, lambda g: g.prompts.matches(prompt))

    def resource_grant_for(self, identity: Identity, server: str, normal_uri: str) -> Grant | None:
        """The grant that gives `server`'s resource (normalised upstream URI or template) to `identity`."""
        return self._grant_where(identity, lambda g: g.grants_resource(server, normal_uri))

    def server_request_grant_for(self, identity: Identity, server: str) -> Grant | None:
        """The grant giving `identity` some tool of `server` (``<server>__...``): opens its server requests."""
        prefix = server + TOOL_SEPARATOR
        return self._grant_where(identity, lambda g: g.tools.may_match_prefix(prefix))

    def is_granted(self, identity: Identity, name: str, kind: RequestKind = "tool", *, server: str = "") -> bool:
        """Whether `name` of `kind` is granted at all (rules may still deny it); filters the list answers.

        tool / prompt: `name` is the public name. resource: `name` is the server's own URI (or URI
        template) and `server` is required. sampling/elicitation/roots: `name` is the server, and the
        answer is whether it may ask this identity by default (it holds a tool grant of that server).
        completion: use the ref's kind (prompt or resource).
        """
        if kind == "tool":
            return self.grant_for(identity, name) is not None
        key = ("granted", kind, identity.name, identity.roles, server, name)
        found = self.cache.get(key)
        if found is None:
            found = self.remember(key, self._lookup_grant(identity, name, kind, server) is not None)
        return bool(found)

    def _lookup_grant(self, identity: Identity, name: str, kind: str, server: str) -> Grant | None:
        if kind == "prompt":
            return self.prompt_grant_for(identity, name)
        if kind == "resource":
            normal = normalise_uri(name)
            return None if normal is None or not server else self.resource_grant_for(identity, server, normal)
        if kind in SERVER_REQUESTS:
            return self.server_request_grant_for(identity, name)
        return None

    def rules_of_kind(self, kind: str) -> tuple[Rule, ...]:
        """Rules targeting `kind` (not tools), in file order."""
        key = ("rules_of_kind", kind)
        found = self.cache.get(key)
        if found is None:
            found = self.remember(key, tuple(r for r in self.rules if r.kind == kind))
        return found

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
        """Dotted argument paths the audit writer must never store in clear for this tool (or `kind`).

        prompt: the prompt's redacted arguments. completion (`public_tool_name` = the prompt ref): the
        completed value and the context arguments of a prompt with redacted arguments, since a partial
        value is a prefix of the secret. Other kinds: none.
        """
        if kind == "completion":
            fields = self.redact_fields(public_tool_name, "prompt")
            if not fields:
                return fields
            return frozenset({"argument.value", *(f"context.arguments.{f}" for f in fields)})
        if kind not in ("tool", "prompt"):
            return frozenset()
        key = ("redact_fields", kind, public_tool_name) if kind != "tool" else ("redact_fields", public_tool_name)
        found = self.cache.get(key)
        if found is None:
            found = self.remember(
                key,
                frozenset(
                    f for r in self.redactions if r.kind == kind and r.tools.matches(public_tool_name) for f in r.fields
                ),
            )
        return found
