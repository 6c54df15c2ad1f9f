"""The MCP conformance suite's server scenarios, directly against the conformance upstream
and through a real Warden gateway in front of it.

Directly, every scenario must pass: that is what makes the upstream a fair yardstick.
Through the gateway (upstream `conf`, its tools namespaced `conf__...` today, the suite's
requests carrying an identity key added by the bearer proxy), the scenarios that pass must
include every one in through_gateway_baseline.json: the bar only rises. The baseline also
names, for each scenario that still fails, the issue whose work makes it pass.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.processes import run_bearer_proxy, run_conformance_upstream
from tests.conformance.suite import Install, SuiteMissing, find_install, run_suite, table
from tests.gateway.harness import run_gateway

pytestmark = pytest.mark.slow

BASELINE_FILE = Path(__file__).parent / "through_gateway_baseline.json"
POLICY = """
identities:
  conformance-agent:
    grants: ["conf__*"]
"""


def _baseline() -> dict[str, Any]:
    baseline: dict[str, Any] = json.loads(BASELINE_FILE.read_text())
    return baseline


@pytest.fixture(scope="module")
def install() -> Install:
    try:
        return find_install()
    except SuiteMissing as missing:
        if os.environ.get("WARDEN_CONFORMANCE_REQUIRED"):
            pytest.fail(str(missing))
        pytest.skip(str(missing))


def test_suite_version_is_the_baselines(install: Install) -> None:
    suite, node = install.version()
    baseline = _baseline()
    assert suite == baseline["suite_version"], "a new suite version: rerun both tests and update the baseline"
    assert int(node.lstrip("v").split(".")[0]) >= 22, f"the suite needs Node >= 22, got {node}"


def test_every_scenario_passes_directly(install: Install, tmp_path: Path) -> None:
    with run_conformance_upstream(tmp_path) as upstream:
        results = run_suite(install, upstream.mcp_url, tmp_path / "direct")
    print(f"\nconformance suite {install.version()[0]}, directly against tests/upstreams/conformance_server.py:")
    print(table(results))
    assert sorted(results) == sorted(_baseline()["scenarios"]), "the suite's scenarios changed"
    failing = {name: s.failures for name, s in results.items() if not s.ok}
    assert not failing, f"the conformance upstream fails scenarios on its own: {failing}"
    assert all(s.passed > 0 for name, s in results.items() if name != "server-sse-polling"), "a vacuous pass"


def test_through_gateway_passing_set_does_not_shrink(install: Install, tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    with run_conformance_upstream(tmp_path) as upstream:
        upstreams = f"servers:\n  conf:\n    url: {upstream.mcp_url}\n"
        with (
            run_gateway(tmp_path, policy_dir, upstreams, ["conformance-agent"]) as gw,
            run_bearer_proxy(tmp_path, gw.url, gw.keys["conformance-agent"]) as proxy,
        ):
            results = run_suite(install, proxy.mcp_url, tmp_path / "through-gateway")
    print(f"\nconformance suite {install.version()[0]}, through the gateway (upstream `conf`):")
    print(table(results))
    baseline = _baseline()
    passing = {name for name, s in results.items() if s.ok}
    lost = set(baseline["passing_through_gateway"]) - passing
    assert not lost, f"scenarios that passed through the gateway no longer do: {sorted(lost)}"
    gained = passing - set(baseline["passing_through_gateway"])
    if gained:
        print(f"now passing through the gateway, add to {BASELINE_FILE.name}: {sorted(gained)}")
    unowned = set(results) - passing - set(baseline["failing_through_gateway"])
    assert not unowned, f"failing scenarios with no issue named in the baseline: {sorted(unowned)}"
