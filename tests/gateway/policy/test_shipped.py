"""The example policies in policies/ load, pass their own cases, and cover every rule and limit."""

from __future__ import annotations

from gateway.policy import load_policy
from gateway.policy.testing import run_tests
from tests.gateway.policy.conftest import SHIPPED


def test_shipped_cases_pass() -> None:
    policy = load_policy(SHIPPED)
    results = run_tests(policy, SHIPPED)
    assert results
    assert [r.name for r in results if not r.passed] == []


def test_every_rule_limit_and_grant_is_exercised_by_a_case() -> None:
    policy = load_policy(SHIPPED)
    results = run_tests(policy, SHIPPED)
    seen = {rule_id for r in results for rule_id in r.got.rule_ids}
    assert {rule.id for rule in policy.rules} <= seen
    assert {limit.id for limit in policy.rate_limits} <= seen
    assert {"default-deny", "grant:role:reader", "grant:role:operator"} <= seen
    assert any(r.expected.redacted for r in results)


EXAMPLES = SHIPPED / "examples"


def test_resource_example_cases_pass_and_cover_every_rule() -> None:
    directory = EXAMPLES / "resources"
    policy = load_policy(directory)
    results = run_tests(policy, directory)
    assert [r.name for r in results if not r.passed] == []
    seen = {rule_id for r in results for rule_id in r.got.rule_ids}
    assert {rule.id for rule in policy.rules} <= seen
    kinds = {rule.kind for rule in policy.rules}
    assert kinds == {"resource", "prompt", "sampling", "elicitation", "roots"}
    assert any(r.expected.redacted for r in results)


def test_examples_are_not_part_of_the_default_policy() -> None:
    policy = load_policy(SHIPPED)
    assert all(path.parent == SHIPPED for path in policy.files)
    assert not any(rule.kind != "tool" for rule in policy.rules)
