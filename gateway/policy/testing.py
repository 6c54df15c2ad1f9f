"""The policy test runner behind `warden policy test`.

Owns the format of ``<policy dir>/tests/*.yaml`` and running it. Each case names an
identity, exactly one request (a public tool name ``tool``; ``resource: {server, uri}``;
``prompt``; ``completion: {prompt}`` or ``completion: {server, template}``; ``sampling``,
``elicitation`` or ``roots`` naming a server), arguments (``params`` for server requests) and
the expected effect (and optionally the rule id that must be among the decision's rule ids,
the approver roles, and the argument paths redacted for the request). A case with
``repeat: N`` makes N identical calls at one instant through a fresh `RateLimiter`, and
``expect`` applies to the last, which is how rate limits are tested. Calls go through
`decide()` then `RateLimiter.check()` (not for server requests), as in the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.names import split_offline
from gateway.policy.compiled import SERVER_REQUESTS, Policy
from gateway.policy.engine import decide
from gateway.policy.load import PATTERNS, validate
from gateway.policy.problems import Location, PolicyError, Problem
from gateway.policy.ratelimit import RateLimiter
from gateway.policy.source import read_yaml
from gateway.types import Decision, Effect, Identity, RequestKind, ToolCall

REQUESTS: tuple[RequestKind, ...] = ("tool", "resource", "prompt", "completion", "sampling", "elicitation", "roots")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Expect(_Spec):
    effect: Effect
    rule: str | None = Field(None, description="A rule id that must be among the decision's rule ids.")
    approvers: list[str] | None = Field(None, description="Exact approver roles expected (effect approve).")
    redacted: list[str] | None = Field(None, description="Exact argument paths policy redacts for this tool.")


class ResourceRef(_Spec):
    server: str
    uri: str = Field(description="The server's own URI, as the gateway forwards it.")


class CompletionRef(_Spec):
    prompt: str | None = Field(None, description="Public prompt name (ref/prompt).")
    server: str | None = Field(None, description="Server of the template (ref/resource).")
    template: str | None = Field(None, description="The server's own URI template (ref/resource).")

    @model_validator(mode="after")
    def _one_ref(self) -> CompletionRef:
        if (self.prompt is None) == (self.template is None) or (self.template is None) != (self.server is None):
            raise ValueError("a completion names either prompt, or server and template")
        return self


class Request(_Spec):
    """Exactly one request, as a case (or `warden policy explain`) names it."""

    tool: str | None = Field(
        None, description="Public tool name: <server><separator><tool>, or an unprefixed mount's own name."
    )
    resource: ResourceRef | None = None
    prompt: str | None = Field(None, description="Public prompt name, <server><separator><prompt>.")
    completion: CompletionRef | None = None
    sampling: str | None = Field(None, description="Server making a sampling/createMessage request.")
    elicitation: str | None = Field(None, description="Server making an elicitation/create request.")
    roots: str | None = Field(None, description="Server making a roots/list request.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Tool/prompt arguments, or a completion's.")
    params: dict[str, Any] = Field(default_factory=dict, description="Params of a server request.")

    @model_validator(mode="after")
    def _one_request(self) -> Request:
        given = [key for key in REQUESTS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"a case names exactly one of {', '.join(REQUESTS)} (found {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> RequestKind:
        return next(key for key in REQUESTS if getattr(self, key) is not None)


class Case(Request):
    name: str
    identity: str
    repeat: Annotated[int, Field(ge=1, description="Identical calls to make; expect applies to the last.")] = 1
    expect: Expect


class CaseFile(_Spec):
    cases: Annotated[list[Case], Field(min_length=1)]


@dataclass(frozen=True, slots=True)
class CaseResult:
    location: Location
    name: str
    expected: Expect
    got: Decision
    redacted: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[str]:
        found = []
        if self.got.effect != self.expected.effect:
            found.append(f"effect {self.got.effect}, expected {self.expected.effect}")
        if self.expected.rule is not None and self.expected.rule not in self.got.rule_ids:
            found.append(f"rule ids {list(self.got.rule_ids)} lack {self.expected.rule}")
        if self.expected.approvers is not None and sorted(self.expected.approvers) != list(self.got.approver_roles):
            found.append(f"approvers {list(self.got.approver_roles)}, expected {sorted(self.expected.approvers)}")
        if self.expected.redacted is not None and sorted(self.expected.redacted) != list(self.redacted):
            found.append(f"redacted {list(self.redacted)}, expected {sorted(self.expected.redacted)}")
        return found


def case_files(policy_dir: Path) -> list[Path]:
    tests = Path(policy_dir) / "tests"
    return sorted({p for pattern in PATTERNS for p in tests.glob(pattern) if p.is_file()})


def load_cases(files: list[Path]) -> list[tuple[Location, Case]]:
    """Parse case files; raise `PolicyError` with file:line for any malformed one."""
    problems: list[Problem] = []
    cases: list[tuple[Location, Case]] = []
    for file in files:
        doc, found = read_yaml(file)
        problems += found
        if doc is None:
            continue
        spec = validate(doc, CaseFile, problems)
        if spec is not None:
            cases += [(doc.at(("cases", i)), case) for i, case in enumerate(spec.cases)]
    if problems:
        raise PolicyError(problems)
    return cases


def case_request(case: Request, separator: str = "__", call_id: str = "policy-test") -> ToolCall:
    """The request a case makes, built as the gateway builds it (gateway/types.py `ToolCall`)."""
    kind = case.kind
    if case.tool is not None or case.prompt is not None:
        name = case.tool if case.tool is not None else case.prompt
        assert name is not None
        server, upstream = split_offline(name, separator)
        return ToolCall(name, server, upstream, case.arguments, call_id, kind=kind)
    if case.resource is not None:
        ref = case.resource
        public = f"{ref.server}+{ref.uri}"
        return ToolCall(public, ref.server, ref.uri, {"uri": ref.uri}, call_id, kind="resource")
    if case.completion is not None:
        return _completion_request(case.completion, case.arguments, separator, call_id)
    server = case.sampling or case.elicitation or case.roots or ""
    return ToolCall(server, server, SERVER_METHODS[kind], case.params, call_id, kind=kind)


SERVER_METHODS = {"sampling": "sampling/createMessage", "elicitation": "elicitation/create", "roots": "roots/list"}


def _completion_request(ref: CompletionRef, arguments: dict[str, Any], separator: str, call_id: str) -> ToolCall:
    if ref.prompt is not None:
        server, upstream = split_offline(ref.prompt, separator)
        args = {**arguments, "ref_type": "ref/prompt"}
        return ToolCall(ref.prompt, server, upstream, args, call_id, kind="completion")
    server, template = ref.server or "", ref.template or ""
    args = {**arguments, "ref_type": "ref/resource"}
    return ToolCall(f"{server}+{template}", server, template, args, call_id, kind="completion")


def run_case(policy: Policy, case: Case, location: Location, separator: str = "__") -> CaseResult:
    identity = Identity(case.identity, policy.roles_of(case.identity))
    limiter = RateLimiter()
    decision = Decision("deny", (), "not run")
    for i in range(case.repeat):
        call = case_request(case, separator, call_id=f"policy-test-{i}")
        decision = decide(policy, call, identity)
        if decision.effect != "deny" and call.kind not in SERVER_REQUESTS:  # as the gateway pipeline does
            decision = limiter.check(policy, identity, call, now=0.0, decision=decision) or decision
    call = case_request(case, separator)
    redacted = tuple(sorted(policy.redact_fields(call.name, call.kind)))
    return CaseResult(location, case.name, case.expect, decision, redacted)


def run_tests(policy: Policy, policy_dir: Path, separator: str = "__") -> list[CaseResult]:
    """Run every case under ``<policy_dir>/tests``."""
    return [run_case(policy, case, where, separator) for where, case in load_cases(case_files(policy_dir))]
