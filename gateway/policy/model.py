"""The policy file format, as pydantic models.

Owns the shape of one YAML policy file and every check that needs only that file:
unknown keys, effect values, approvers only (and always) and scope only on `approve` rules, CEL
syntax and the variables of the rule's kind, exactly one target per rule (tools, resources,
prompts, sampling, elicitation, roots) and per redaction, glob, URI glob and limit sanity.
Checks that span files (unique ids, known roles) live in `load.py`. These models are data
only; `compiled.py` turns them into the indexed `Policy` the engine reads.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.policy.condition import ALL_VARIABLES, KIND_VARIABLES, Condition
from gateway.policy.uri import check_uri_glob
from gateway.types import Effect, ScopeMatch

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_GLOB_CHARS = re.compile(r"^[A-Za-z0-9._/*?\[\]!-]+$")
_FIELD_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
RESERVED_IDS = frozenset({"default-deny"})


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name (letters, digits, '.', '_', '-'; no globs)")
    return value


def _check_id(value: str) -> str:
    _check_name(value)
    if value in RESERVED_IDS:
        raise ValueError(f"id {value!r} is reserved")
    return value


def _check_glob(value: str) -> str:
    if not value:
        raise ValueError("empty glob")
    if not _GLOB_CHARS.match(value):
        raise ValueError(f"glob {value!r} has characters not allowed in tool or identity names")
    depth = 0
    for ch in value:
        if ch == "[":
            if depth:
                raise ValueError(f"glob {value!r} nests '['")
            depth = 1
        elif ch == "]" and depth:
            depth = 0
    if depth:
        raise ValueError(f"glob {value!r} has an unclosed '['")
    return value


def _check_field_path(value: str) -> str:
    if not _FIELD_PATH.match(value):
        raise ValueError(f"{value!r} is not a dotted field path like 'auth.token'")
    return value


Name = Annotated[str, AfterValidator(_check_name)]
Id = Annotated[str, AfterValidator(_check_id)]
Glob = Annotated[str, AfterValidator(_check_glob)]
FieldPath = Annotated[str, AfterValidator(_check_field_path)]
UriGlob = Annotated[str, AfterValidator(check_uri_glob)]
"""A URI glob (`uri.py`): ``**`` crosses '/', ``*`` does not; stored normalised."""
Globs = Annotated[list[Glob], Field(min_length=1)]
ResourceGlobs = dict[Glob, Annotated[list[UriGlob], Field(min_length=1)]]
"""Server glob -> URI globs over that server's own (upstream) URIs."""

RULE_TARGETS = ("tools", "resources", "prompts", "sampling", "elicitation", "roots")
"""A rule's target keys; exactly one per rule. The key names the kind: tools -> tool, resources -> resource ..."""
TARGET_KIND = {
    "tools": "tool",
    "resources": "resource",
    "prompts": "prompt",
    "sampling": "sampling",
    "elicitation": "elicitation",
    "roots": "roots",
}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RoleSpec(_Spec):
    grants: list[Glob] = Field(default_factory=list, description="Globs over public tool names granted to holders.")
    resources: ResourceGlobs = Field(
        default_factory=dict, description="Server glob -> URI globs of that server's resources granted."
    )
    prompts: list[Glob] = Field(default_factory=list, description="Globs over public prompt names granted.")


class IdentitySpec(RoleSpec):
    roles: list[Name] = Field(default_factory=list, description="Roles this identity holds.")


class ScopeSpec(_Spec):
    match: ScopeMatch = Field(
        "exact", description="exact: the one approved call; tool: any arguments the rule matches, same identity."
    )
    ttl_s: Annotated[float, Field(gt=0, description="Seconds a granted approval stays usable after the decision.")]


class RuleSpec(_Spec):
    id: Id
    effect: Effect
    tools: Globs | None = Field(None, description="Globs over public tool names.")
    resources: ResourceGlobs | None = Field(None, description="Server glob -> URI globs (normalised upstream URIs).")
    prompts: Globs | None = Field(None, description="Globs over public prompt names.")
    sampling: Globs | None = Field(None, description="Server globs: that server's sampling/createMessage requests.")
    elicitation: Globs | None = Field(None, description="Server globs: that server's elicitation/create requests.")
    roots: Globs | None = Field(None, description="Server globs: that server's roots/list requests.")
    identities: list[Glob] = Field(default_factory=lambda: ["*"])
    roles: list[Name] = Field(default_factory=list, description="Applies only if the identity holds one of these.")
    when: str | None = Field(None, description="CEL condition; the variables depend on the target kind.")
    reason: str = ""
    approvers: list[Name] = Field(default_factory=list, description="For effect approve: roles that may approve.")
    scope: ScopeSpec | None = Field(None, description="For effect approve: how far a granted approval reaches.")

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            Condition.compile(value, ALL_VARIABLES)
        return value

    @property
    def target(self) -> str:
        """The one target key given (validated)."""
        return next(key for key in RULE_TARGETS if getattr(self, key) is not None)

    @property
    def kind(self) -> str:
        return TARGET_KIND[self.target]

    @model_validator(mode="after")
    def _one_target(self) -> RuleSpec:
        given = [key for key in RULE_TARGETS if getattr(self, key) is not None]
        if len(given) != 1:
            found = f"found {', '.join(given)}" if given else "found none"
            raise ValueError(f"rule {self.id!r}: give exactly one target of {', '.join(RULE_TARGETS)} ({found})")
        if self.when is not None:
            try:
                Condition.compile(self.when, KIND_VARIABLES[self.kind])
            except ValueError as exc:
                raise ValueError(f"rule {self.id!r} ({given[0]}): {exc}") from None
        return self

    @model_validator(mode="after")
    def _approvers_match_effect(self) -> RuleSpec:
        if self.effect == "approve" and not self.approvers:
            raise ValueError(f"rule {self.id!r}: effect approve needs at least one role in approvers")
        if self.effect != "approve" and self.approvers:
            raise ValueError(f"rule {self.id!r}: approvers are only allowed on effect approve, not {self.effect}")
        if self.effect != "approve" and self.scope is not None:
            raise ValueError(f"rule {self.id!r}: scope is only allowed on effect approve, not {self.effect}")
        return self


class RateLimitSpec(_Spec):
    id: Id
    tools: Annotated[list[Glob], Field(min_length=1)]
    identities: list[Glob] = Field(default_factory=lambda: ["*"])
    limit: Annotated[int, Field(ge=1, description="Calls allowed per identity per tool in the window.")]
    window_s: Annotated[float, Field(gt=0, description="Sliding window length in seconds.")]


class RedactSpec(_Spec):
    tools: Globs | None = Field(None, description="Globs over public tool names whose arguments are redacted.")
    prompts: Globs | None = Field(None, description="Globs over public prompt names whose arguments are redacted.")
    fields: Annotated[list[FieldPath], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_target(self) -> RedactSpec:
        if (self.tools is None) == (self.prompts is None):
            raise ValueError("a redaction names exactly one of tools, prompts")
        return self


class PolicyFile(_Spec):
    """One YAML file. Every file in the policy directory is merged into one policy."""

    identities: dict[Name, IdentitySpec] = Field(default_factory=dict)
    roles: dict[Name, RoleSpec] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)
    rate_limits: list[RateLimitSpec] = Field(default_factory=list)
    redact: list[RedactSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _empty_entries(cls, data: Any) -> Any:
        """Let `approver:` (null) mean `approver: {}` and a bare `rules:` mean no rules."""
        if not isinstance(data, dict):
            return data
        data = {k: ([] if v is None and k in ("rules", "rate_limits", "redact") else v) for k, v in data.items()}
        for section in ("identities", "roles"):
            if isinstance(data.get(section), dict):
                data[section] = {k: ({} if v is None else v) for k, v in data[section].items()}
            elif data.get(section) is None and section in data:
                data[section] = {}
        return data
