"""The policy test runner behind `warden policy test`.

Owns the format of ``<policy dir>/tests/*.yaml`` and running it. Each case names an
identity, a public tool name, arguments and the expected effect (and optionally the
rule id that must be among the decision's rule ids, the approver roles, and the
argument paths redacted for the tool). A case
with ``repeat: N`` makes N identical calls at one instant through a fresh
`RateLimiter`, and ``expect`` applies to the last, which is how rate limits are
tested. Calls go through `decide()` then `RateLimiter.check()`, as in the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.names import split_offline
from gateway.policy.compiled import Policy
from gateway.policy.engine import decide
from gateway.policy.load import PATTERNS, validate
from gateway.policy.problems import Location, PolicyError, Problem
from gateway.policy.ratelimit import RateLimiter
from gateway.policy.source import read_yaml
from gateway.types import Decision, Effect, Identity, ToolCall


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Expect(_Spec):
    effect: Effect
    rule: str | None = Field(None, description="A rule id that must be among the decision's rule ids.")
    approvers: list[str] | None = Field(None, description="Exact approver roles expected (effect approve).")
    redacted: list[str] | None = Field(None, description="Exact argument paths policy redacts for this tool.")


class Case(_Spec):
    name: str
    identity: str
    tool: str = Field(description="Public tool name: <server><separator><tool>, or an unprefixed mount's own name.")
    arguments: dict[str, Any] = Field(default_factory=dict)
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


def run_case(policy: Policy, case: Case, location: Location, separator: str = "__") -> CaseResult:
    identity = Identity(case.identity, policy.roles_of(case.identity))
    server, tool = split_offline(case.tool, separator)
    limiter = RateLimiter()
    decision = Decision("deny", (), "not run")
    for i in range(case.repeat):
        call = ToolCall(case.tool, server, tool, case.arguments, call_id=f"policy-test-{i}")
        decision = decide(policy, call, identity)
        if decision.effect != "deny":
            decision = limiter.check(policy, identity, call, now=0.0, decision=decision) or decision
    redacted = tuple(sorted(policy.redact_fields(case.tool)))
    return CaseResult(location, case.name, case.expect, decision, redacted)


def run_tests(policy: Policy, policy_dir: Path, separator: str = "__") -> list[CaseResult]:
    """Run every case under ``<policy_dir>/tests``."""
    return [run_case(policy, case, where, separator) for where, case in load_cases(case_files(policy_dir))]
