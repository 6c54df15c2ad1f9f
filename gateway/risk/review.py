"""A suggestion against the policy directory it would join: diff, checks, access changes, writing.

Owns what makes adopting a suggestion safe: the unified diff of each file it would write; the
merged policy (current files plus the suggestion, in a scratch copy) loaded and its tests run,
so a suggestion that would not pass `warden policy check` and `warden policy test` is never
written; and the access changes for identities the current files define, an earlier
suggestion of the same name included (a tool newly granted to one of them is a widening and
blocks writing unless the operator allows it; a call newly held for approval is a narrowing,
reported). `write` refuses an existing file unless forced.

Must never: write into the policy directory except in `write`, or write anything there that
failed a check.
"""

from __future__ import annotations

import difflib
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.names import split_offline
from gateway.policy import Location, Policy, PolicyError, Problem, decide, load_policy
from gateway.policy.load import policy_files
from gateway.policy.testing import CaseResult, case_files, load_cases, run_case, run_tests
from gateway.risk.suggest import CatalogTool, Roles, Suggestion, suggest
from gateway.types import Decision, Identity, ToolCall


@dataclass(frozen=True, slots=True)
class AccessChange:
    identity: str
    tool: str
    before: str
    after: str
    widens: bool

    def __str__(self) -> str:
        kind = "WIDENS" if self.widens else "narrows"
        return f"{kind}: {self.identity} {self.tool}: {self.before} -> {self.after}"


@dataclass(frozen=True, slots=True)
class Review:
    files: dict[Path, str]
    """Path to write -> its new text."""
    existing: tuple[Path, ...]
    """Of those, the ones already there."""
    diff: str
    problems: tuple[str, ...]
    """`warden policy check` problems of the merged policy; none when it loads."""
    test_failures: tuple[str, ...]
    """Failing cases of the merged policy's tests (generated and existing)."""
    tests_run: int
    changes: tuple[AccessChange, ...] = field(default=())
    suggestion: Suggestion | None = None

    @property
    def widens(self) -> bool:
        return any(c.widens for c in self.changes)

    @property
    def passes(self) -> bool:
        return not self.problems and not self.test_failures and self.tests_run > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "passes": self.passes,
            "widens": self.widens,
            "tools": [s.to_json() for s in self.suggestion.tools] if self.suggestion else [],
            "skipped": list(self.suggestion.skipped) if self.suggestion else [],
            "files": {str(path): text for path, text in self.files.items()},
            "existing": [str(p) for p in self.existing],
            "diff": self.diff,
            "problems": list(self.problems),
            "test_failures": list(self.test_failures),
            "tests_run": self.tests_run,
            "access_changes": [str(c) for c in self.changes],
        }


SUGGESTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def target_paths(policy_dir: Path, name: str) -> tuple[Path, Path]:
    """Where a suggestion named `name` goes: the policy file and its case file. Raises ValueError
    for a name that is not a plain file stem (no paths, no dots)."""
    if not SUGGESTION_NAME.match(name):
        raise ValueError(f"suggestion name {name!r} must match {SUGGESTION_NAME.pattern} (a file stem, no path)")
    return policy_dir / f"{name}.yaml", policy_dir / "tests" / f"{name}.yaml"


def current_policy(policy_dir: Path) -> Policy | None:
    """What the directory enforces now; None when it has no policy file yet."""
    if not (policy_dir.is_dir() and policy_files(policy_dir)):
        return None
    return load_policy(policy_dir)


def propose(
    policy_dir: Path, name: str, catalog: list[CatalogTool], role_prefix: str = "", separator: str = "__"
) -> Review:
    """Suggest a policy for `catalog` as `<policy_dir>/<name>.yaml` and review it.

    Where rules of the other files are stricter than the suggestion for its example identities,
    the suggestion's cases are regenerated to expect the stricter decision (and say so), once.
    """
    policy_path, _ = target_paths(policy_dir, name)
    try:
        enforced = current_policy(policy_dir)
    except PolicyError as exc:
        return Review({}, (), "", tuple(f"current policy: {p}" for p in exc.problems), (), 0)
    roles, define_approver, clashes = roles_for(enforced, role_prefix, policy_path)
    if clashes:
        return Review({}, (), "", tuple(clashes), (), 0)
    suggestion = suggest(catalog, roles, define_approver)
    first = review(policy_dir, name, suggestion, separator)
    stricter = _stricter(first, separator)
    if not stricter:
        return first
    return review(policy_dir, name, suggest(catalog, roles, define_approver, stricter), separator)


def roles_for(policy: Policy | None, prefix: str, own_file: Path) -> tuple[Roles, bool, list[str]]:
    """The suggestion's role names, whether to define the approver role, and name clashes to report.

    Names defined in `own_file` (an earlier suggestion, which this one replaces) are free. An
    approver role another file defines is reused (it grants nothing); a reader or operator role
    or an example identity another file defines is a clash: choose a prefix instead.
    """
    roles = Roles.prefixed(prefix)
    if policy is None:
        return roles, True, []
    own = own_file.resolve()

    def elsewhere(location: Location) -> bool:
        return location.file.resolve() != own

    clashes = [
        f"role {r!r} is already defined at {policy.roles[r].location}; "
        "choose other role names with --role-prefix (e.g. suggested-)"
        for r in (roles.reader, roles.operator)
        if r in policy.roles and elsewhere(policy.roles[r].location)
    ]
    examples = (roles.example_identity(r) for r in (roles.reader, roles.operator, roles.approver))
    clashes += [
        f"identity {name!r} is already defined at {policy.identities[name].grant.location}; "
        "choose other names with --role-prefix"
        for name in examples
        if name in policy.identities and elsewhere(policy.identities[name].grant.location)
    ]
    approver = policy.roles.get(roles.approver)
    return roles, approver is None or not elsewhere(approver.location), clashes


def review(policy_dir: Path, name: str, suggestion: Suggestion, separator: str = "__") -> Review:
    """Diff, check and test `suggestion` as `<policy_dir>/<name>.yaml` (+ tests/) without touching the directory."""
    policy_path, tests_path = target_paths(policy_dir, name)
    files = {policy_path: suggestion.policy_text, tests_path: suggestion.tests_text}
    existing = tuple(p for p in files if p.exists())
    diff = "".join(_diff(path, text) for path, text in files.items())
    try:
        before = current_policy(policy_dir)  # an earlier suggestion of the same name included
    except PolicyError as exc:
        return Review(files, existing, diff, tuple(f"current policy: {p}" for p in exc.problems), (), 0)
    with tempfile.TemporaryDirectory(prefix="warden-suggest-") as scratch:
        merged_dir = _merged_copy(policy_dir, Path(scratch), files)
        try:
            merged = load_policy(merged_dir)
        except PolicyError as exc:
            problems = tuple(_here(p, policy_dir, merged_dir) for p in exc.problems)
            return Review(files, existing, diff, problems, (), 0, suggestion=suggestion)
        try:
            results = run_tests(merged, merged_dir, separator)
        except PolicyError as exc:
            problems = tuple(_here(p, policy_dir, merged_dir) for p in exc.problems)
            return Review(files, existing, diff, problems, (), 0, suggestion=suggestion)
    failures = tuple(_failure(r, merged_dir, policy_dir) for r in results if not r.passed)
    tools = [s.entry.public_name for s in suggestion.tools]
    changes = tuple(_access_changes(before, merged, tools, separator)) if before is not None else ()
    return Review(files, existing, diff, (), failures, len(results), changes, suggestion)


def _stricter(first: Review, separator: str) -> dict[tuple[str, str], Decision]:
    """Generated cases that failed because another file's rule decided more strictly."""
    if first.problems or not first.files:
        return {}
    policy_path = next(iter(first.files))
    with tempfile.TemporaryDirectory(prefix="warden-suggest-") as scratch:
        merged_dir = _merged_copy(policy_path.parent, Path(scratch), first.files)
        merged = load_policy(merged_dir)
        generated = merged_dir / "tests" / policy_path.name
        found: dict[tuple[str, str], Decision] = {}
        for where, case in load_cases([generated]):
            result = run_case(merged, case, where, separator)
            if not result.passed and _RANK[result.got.effect] < _RANK[result.expected.effect]:
                found[(case.identity, case.tool or "")] = result.got
        return found


def write(result: Review, force: bool = False, allow_widening: bool = False) -> list[Path]:
    """Write the reviewed files. Raises ValueError (nothing written) when a check failed, a file
    exists and `force` is off, or the suggestion widens access and `allow_widening` is off."""
    if not result.passes:
        raise ValueError("the merged policy does not pass its checks and tests; nothing written")
    if result.existing and not force:
        shown = ", ".join(str(p) for p in result.existing)
        raise ValueError(f"{shown} already exist(s); pass --force to overwrite; nothing written")
    if result.widens and not allow_widening:
        raise ValueError("the suggestion widens what existing identities may call; pass --allow-widening to accept")
    for path, text in result.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(result.files)


def _diff(path: Path, text: str) -> str:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    label = str(path) if path.exists() else "/dev/null"
    lines = difflib.unified_diff(old.splitlines(True), text.splitlines(True), label, str(path))
    return "".join(lines)


def _merged_copy(policy_dir: Path, scratch: Path, files: dict[Path, str]) -> Path:
    merged = scratch / "policies"
    (merged / "tests").mkdir(parents=True)
    if policy_dir.is_dir():
        for path in [*policy_files(policy_dir), *case_files(policy_dir)]:
            shutil.copy(path, merged / path.relative_to(policy_dir))
    for path, text in files.items():
        (merged / path.relative_to(policy_dir)).write_text(text, encoding="utf-8")
    return merged


def _here(problem: Problem, policy_dir: Path, scratch: Path) -> str:
    return str(problem).replace(str(scratch), str(policy_dir))


def _failure(result: CaseResult, scratch: Path, policy_dir: Path) -> str:
    where = str(result.location).replace(str(scratch), str(policy_dir))
    return f"{where}: {result.name}: {'; '.join(result.failures)}"


_RANK = {"deny": 0, "approve": 1, "allow": 2}


def _access_changes(before: Policy, after: Policy, tools: list[str], separator: str) -> list[AccessChange]:
    """For each identity the current files define and each catalog tool: a new grant widens (whatever
    its rules say for some arguments); a changed no-argument decision is shown, widening if it is laxer."""
    changes: list[AccessChange] = []
    for name in sorted(before.identities):
        identity = Identity(name, before.roles_of(name))
        for tool in tools:
            old, new = _effect(before, name, tool, separator), _effect(after, name, tool, separator)
            granted = not before.is_granted(identity, tool) and after.is_granted(
                Identity(name, after.roles_of(name)), tool
            )
            if old != new or granted:
                widens = granted or _RANK[new.split(" ", 1)[0]] > _RANK[old.split(" ", 1)[0]]
                changes.append(AccessChange(name, tool, old, new, widens))
    return changes


def _effect(policy: Policy, name: str, tool: str, separator: str) -> str:
    server, upstream = split_offline(tool, separator)
    decision = decide(policy, ToolCall(tool, server, upstream, {}, "review"), Identity(name, policy.roles_of(name)))
    return f"{decision.effect} {','.join(decision.rule_ids)}"
