"""A real gateway for agent tests: PyPI `mcp-server-time` behind a policy that allows reading the
time (but not of Antarctic zones), and grants nothing else to the agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.harness import Gateway, run_gateway

AGENT = "agent"
POLICY = """
identities:
  agent:
    roles: [timekeeper]
  bystander:
    roles: []
roles:
  timekeeper:
    grants: ["time__*"]
rules:
  - id: deny-antarctica
    effect: deny
    tools: ["time__get_current_time"]
    when: 'args.timezone.startsWith("Antarctica/")'
    reason: no Antarctic time zones
"""
UPSTREAMS = """
servers:
  time:
    command: {python}
    args: ["-m", "mcp_server_time", "--local-timezone", "UTC"]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    import sys

    tmp = tmp_path_factory.mktemp("agent-gateway")
    policy_dir: Path = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    with run_gateway(tmp, policy_dir, UPSTREAMS.format(python=sys.executable), [AGENT, "bystander"]) as gw:
        yield gw
