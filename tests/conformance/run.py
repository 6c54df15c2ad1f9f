"""The two conformance runs, for the tests and for a person: the suite directly against the
conformance upstream, and the suite through a real gateway (`warden gateway serve`) in front
of the same upstream, behind the bearer proxy that adds an identity's key.

Run: python -m tests.conformance.run [--direct-only]   (prints each run's table; needs `make conformance`)

Owns: wiring the processes together for one run. Never: the verdict (test_suite.py judges).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.conformance.processes import run_bearer_proxy, run_conformance_upstream
from tests.conformance.suite import Install, Scenario, find_install, run_suite, table
from tests.gateway.harness import run_gateway

IDENTITY = "conformance-agent"
POLICY = f"""
identities:
  {IDENTITY}:
    grants: ["*"]
    resources: {{conf: ["**"]}}
    prompts: ["*"]
"""
# `conf` is mounted unprefixed (issue 13 item 6): the suite calls the upstream's own names
# (`test_image_content`), and grants name an unprefixed upstream's tools by those names.
UPSTREAMS = """
servers:
  conf:
    url: {url}
    prefix: false
"""


def direct(install: Install, tmp: Path) -> dict[str, Scenario]:
    tmp.mkdir(parents=True, exist_ok=True)
    with run_conformance_upstream(tmp) as upstream:
        return run_suite(install, upstream.mcp_url, tmp / "direct")


def through_gateway(install: Install, tmp: Path) -> dict[str, Scenario]:
    policy_dir = tmp / "policies"
    policy_dir.mkdir(parents=True)
    (policy_dir / "policy.yaml").write_text(POLICY)
    with run_conformance_upstream(tmp) as upstream:
        upstreams = UPSTREAMS.format(url=upstream.mcp_url)
        with (
            run_gateway(tmp, policy_dir, upstreams, [IDENTITY]) as gw,
            run_bearer_proxy(tmp, gw.url, gw.keys[IDENTITY]) as proxy,
        ):
            return run_suite(install, proxy.mcp_url, tmp / "through-gateway")


def main() -> None:
    install = find_install()
    suite, node = install.version()
    with tempfile.TemporaryDirectory(prefix="warden-conformance-") as tmp:
        print(f"MCP conformance suite {suite} (Node {node}), directly against the conformance upstream:")
        print(table(direct(install, Path(tmp) / "a")))
        if "--direct-only" not in sys.argv[1:]:
            print("\nthrough the gateway (upstream `conf`, mounted unprefixed):")
            print(table(through_gateway(install, Path(tmp) / "b")))


if __name__ == "__main__":
    main()
