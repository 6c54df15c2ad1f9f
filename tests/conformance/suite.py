"""Running the MCP conformance suite (npm `@modelcontextprotocol/conformance`) against a URL.

The suite and the Node 22 it needs are installed from the npm registry by `make
conformance` into `.cache/conformance/` (git-ignored; versions pinned by
tests/conformance/package-lock.json). WARDEN_CONFORMANCE_DIR points elsewhere.

Owns: finding that install, one `conformance server --suite all` run, and reading its
per-scenario `checks.json` files into `Scenario` results. Never: judging them (the tests do).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[2]
SUITE_PACKAGE = "@modelcontextprotocol/conformance"
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[0-9-]+Z$")


class SuiteMissing(RuntimeError):
    """The suite or its Node is not installed; the message says how to install them."""


@dataclass(frozen=True)
class Install:
    node: Path
    entry: Path

    def version(self) -> tuple[str, str]:
        """(suite version, Node version)."""
        package = json.loads((self.entry.parents[1] / "package.json").read_text())
        node = subprocess.run([str(self.node), "--version"], capture_output=True, text=True, check=True)
        return str(package["version"]), node.stdout.strip()


@dataclass
class Scenario:
    name: str
    passed: int = 0
    failed: int = 0
    warnings: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """What the suite counts as a pass: no check failed. A scenario whose checks are all
        warnings or info (0 passed) passes too; `table` shows those counts."""
        return self.failed == 0


class Report(Protocol):
    """Shows a line, and a run's table when given (the tests' `report` fixture)."""

    def __call__(self, title: str, results: dict[str, Scenario] | None = None) -> None: ...


def find_install() -> Install:
    root = Path(os.environ.get("WARDEN_CONFORMANCE_DIR", REPO / ".cache" / "conformance"))
    node = root / "node_modules" / "node" / "bin" / "node"
    entry = root / "node_modules" / SUITE_PACKAGE / "dist" / "index.js"
    if not (node.exists() and entry.exists()):
        raise SuiteMissing(f"conformance suite not installed under {root}: run `make conformance`")
    return Install(node, entry)


def run_suite(install: Install, url: str, out_dir: Path, timeout: float = 600) -> dict[str, Scenario]:
    """Run every server scenario against `url`; results by scenario name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [str(install.node), str(install.entry), "server", "--url", url, "--suite", "all", "-o", str(out_dir)]
    # Exit status 1 only says some check failed; the checks files say which.
    run = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=out_dir)
    (out_dir / "suite.log").write_text(run.stdout + run.stderr)
    results = read_results(out_dir)
    if not results:
        raise RuntimeError(f"the suite wrote no results (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    return results


def read_results(out_dir: Path) -> dict[str, Scenario]:
    results: dict[str, Scenario] = {}
    for checks_file in sorted(out_dir.glob("server-*/checks.json")):
        match = _RESULT_DIR.match(checks_file.parent.name)
        if match is None:
            continue
        results[match["scenario"]] = _scenario(match["scenario"], json.loads(checks_file.read_text()))
    return results


def _scenario(name: str, checks: list[dict[str, Any]]) -> Scenario:
    scenario = Scenario(name)
    for check in checks:
        status = check.get("status")
        if status == "SUCCESS":
            scenario.passed += 1
        elif status == "FAILURE":
            scenario.failed += 1
            scenario.failures.append(f"{check.get('name')}: {check.get('errorMessage') or check.get('description')}")
        elif status == "WARNING":
            scenario.warnings += 1
    return scenario


def table(results: dict[str, Scenario]) -> str:
    """One line per scenario, as the suite's summary prints it, plus the first failure."""
    lines = []
    for scenario in results.values():
        mark = "PASS" if scenario.ok else "FAIL"
        warned = f", {scenario.warnings} warnings" if scenario.warnings else ""
        line = f"{mark} {scenario.name}: {scenario.passed} passed, {scenario.failed} failed{warned}"
        lines.append(line + (f"  [{scenario.failures[0][:140]}]" if scenario.failures else ""))
    passing = sum(s.ok for s in results.values())
    checks = sum(s.passed for s in results.values()), sum(s.passed + s.failed for s in results.values())
    lines.append(f"{passing}/{len(results)} scenarios, {checks[0]}/{checks[1]} checks")
    return "\n".join(lines)
