"""gateway/risk/review.py: a suggestion against real policy directories: diff, checks, widening, writing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.risk.review import propose, target_paths, write
from gateway.risk.suggest import CatalogTool
from tests.gateway.harness import REPO

SHIPPED = REPO / "policies"


def test_a_fresh_directory_gets_a_passing_policy_written_once(tmp_path: Path, snapshot: list[CatalogTool]) -> None:
    policy_dir = tmp_path / "policies"
    review = propose(policy_dir, "suggested", snapshot)
    assert review.passes and review.tests_run > len(snapshot)
    assert review.changes == () and review.existing == ()
    assert "--- /dev/null" in review.diff and "+  - id: git.git_reset.approve" in review.diff
    assert not policy_dir.exists()  # reviewing writes nothing
    written = write(review)
    assert [p.relative_to(policy_dir).as_posix() for p in written] == ["suggested.yaml", "tests/suggested.yaml"]

    again = propose(policy_dir, "suggested", snapshot)
    assert again.existing == tuple(written) and again.diff == ""  # same catalog: nothing to change
    with pytest.raises(ValueError, match="already exist"):
        write(again)
    assert write(again, force=True) == written


def test_existing_roles_of_the_same_name_are_a_clash(snapshot: list[CatalogTool]) -> None:
    review = propose(SHIPPED, "suggested", snapshot)
    assert not review.passes and review.files == {}
    assert any("role 'reader' is already defined at" in p and "--role-prefix" in p for p in review.problems)


def test_stricter_rules_of_other_files_win_and_the_cases_say_so(tmp_path: Path, snapshot: list[CatalogTool]) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(SHIPPED, policy_dir)
    review = propose(policy_dir, "suggested", snapshot, role_prefix="s-")
    assert review.passes, (review.problems, review.test_failures)
    text = review.files[policy_dir / "suggested.yaml"]
    assert "# NOTE for example-s-operator: deny by rule deny-git-reset of another file wins over this rule" in text
    assert "  s-approver: {}" in text and "\n  approver: {}" not in text
    tests = review.files[policy_dir / "tests" / "suggested.yaml"]
    assert "expect: {effect: deny, rule: deny-git-reset}" in tests
    assert review.changes == ()  # shipped identities keep every decision: nothing widened, nothing held


def test_a_newly_held_call_is_a_narrowing_and_may_be_written(tmp_path: Path, snapshot: list[CatalogTool]) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "ops.yaml").write_text(
        "identities:\n  ops-bot:\n    roles: [files]\nroles:\n  files:\n    grants: ['filesystem__*']\n  approver: {}\n"
    )
    review = propose(policy_dir, "suggested", snapshot)
    assert review.passes
    held = {c.tool: c for c in review.changes if c.identity == "ops-bot"}
    assert str(held["filesystem__write_file"]) == (
        "narrows: ops-bot filesystem__write_file: allow grant:role:files -> approve filesystem.write_file.approve"
    )
    assert not review.widens
    assert "approver: {}" not in review.files[policy_dir / "suggested.yaml"]  # ops.yaml's approver is reused
    write(review)


def test_granting_more_to_existing_identities_needs_consent(tmp_path: Path, snapshot: list[CatalogTool]) -> None:
    policy_dir = tmp_path / "policies"
    write(propose(policy_dir, "suggested", [e for e in snapshot if e.server == "time"]))
    (policy_dir / "agents.yaml").write_text("identities:\n  prod-agent:\n    roles: [reader]\n")
    review = propose(policy_dir, "suggested", snapshot)  # the catalog grew: readers would get git, files...
    assert review.passes and review.widens
    widened = [str(c) for c in review.changes if c.identity == "prod-agent" and c.widens]
    assert "WIDENS: prod-agent git__git_status: deny default-deny -> allow git.git_status.reader" in widened
    with pytest.raises(ValueError, match="widens"):
        write(review, force=True)
    assert "git__git_status" not in (policy_dir / "suggested.yaml").read_text()
    write(review, force=True, allow_widening=True)
    assert "git__git_status" in (policy_dir / "suggested.yaml").read_text()


def test_a_merged_policy_that_does_not_load_is_never_written(tmp_path: Path, snapshot: list[CatalogTool]) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "mine.yaml").write_text("rules:\n  - id: git.git_reset.approve\n    effect: deny\n    tools: [x]\n")
    review = propose(policy_dir, "suggested", snapshot)
    assert any("duplicate id 'git.git_reset.approve'" in p for p in review.problems)
    with pytest.raises(ValueError, match="does not pass"):
        write(review)
    assert not (policy_dir / "suggested.yaml").exists()


def test_a_broken_current_policy_is_reported_not_overridden(tmp_path: Path, snapshot: list[CatalogTool]) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "bad.yaml").write_text("rules:\n  - id: a\n    effect: maybe\n    tools: [x]\n")
    review = propose(policy_dir, "suggested", snapshot)
    assert not review.passes
    assert any(p.startswith("current policy: ") and "effect" in p for p in review.problems)


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "Upper", "", "x" * 65, "a.yaml"])
def test_a_name_that_is_not_a_plain_stem_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="file stem"):
        target_paths(tmp_path, name)


def test_a_new_grant_widens_even_where_a_condition_denies_without_arguments(
    tmp_path: Path, snapshot: list[CatalogTool]
) -> None:
    policy_dir = tmp_path / "policies"
    write(propose(policy_dir, "suggested", [e for e in snapshot if e.server == "time"]))
    (policy_dir / "agents.yaml").write_text(
        "identities:\n  prod-agent:\n    roles: [reader]\n"
        "rules:\n  - id: no-root-repo\n    effect: deny\n    tools: [git__git_status]\n"
        "    when: \"args.repo_path == '/'\"\n"
    )
    review = propose(policy_dir, "suggested", snapshot)
    status = next(c for c in review.changes if c.identity == "prod-agent" and c.tool == "git__git_status")
    assert status.widens and status.after == "deny no-root-repo"  # fails closed without arguments, yet granted
