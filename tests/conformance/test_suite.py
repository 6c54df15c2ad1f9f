"""The MCP conformance suite's server scenarios, directly against the conformance upstream
and through a real Warden gateway in front of it (tests/conformance/run.py wires both).

Directly, every scenario must pass: that is what makes the upstream a fair yardstick.
Through the gateway (upstream `conf` mounted unprefixed, so tools keep their own names, the suite's
requests carrying an identity key added by the bearer proxy), the scenarios that pass must
include every one in through_gateway_baseline.json: the bar only rises. The baseline also
names, for each scenario that still fails, the issue whose work makes it pass. Both tables
are printed (past pytest's capture) on every run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import run
from tests.conformance.suite import Install, Report

pytestmark = pytest.mark.slow

BASELINE_FILE = Path(__file__).parent / "through_gateway_baseline.json"


def _baseline() -> dict[str, Any]:
    baseline: dict[str, Any] = json.loads(BASELINE_FILE.read_text())
    return baseline


def test_suite_version_is_the_baselines(install: Install) -> None:
    suite, node = install.version()
    assert suite == _baseline()["suite_version"], "a new suite version: rerun both tests and update the baseline"
    assert int(node.lstrip("v").split(".")[0]) >= 22, f"the suite needs Node >= 22, got {node}"


def test_every_scenario_passes_directly(install: Install, tmp_path: Path, report: Report) -> None:
    results = run.direct(install, tmp_path)
    report(f"conformance suite {install.version()[0]}, directly against the conformance upstream:", results)
    assert sorted(results) == sorted(_baseline()["scenarios"]), "the suite's scenarios changed"
    failing = {name: s.failures for name, s in results.items() if not s.ok}
    assert not failing, f"the conformance upstream fails scenarios on its own: {failing}"
    vacuous = [name for name, s in results.items() if s.passed == 0 and name != "server-sse-polling"]
    assert not vacuous, f"scenarios passed with no successful check: {vacuous}"


def test_through_gateway_passing_set_does_not_shrink(install: Install, tmp_path: Path, report: Report) -> None:
    results = run.through_gateway(install, tmp_path)
    baseline = _baseline()
    passing = {name for name, s in results.items() if s.ok}
    report(f"conformance suite {install.version()[0]}, through the gateway (upstream `conf`):", results)
    gained = sorted(passing - set(baseline["passing_through_gateway"]))
    if gained:
        report(f"now passing: move them to passing_through_gateway in {BASELINE_FILE.name}: {gained}")
    lost = set(baseline["passing_through_gateway"]) - passing
    assert not lost, f"scenarios that passed through the gateway no longer do: {sorted(lost)}"
    unowned = set(results) - passing - set(baseline["failing_through_gateway"])
    assert not unowned, f"failing scenarios with no issue named in the baseline: {sorted(unowned)}"
