"""The resource / prompt / subscription tests' shared setup: a policy granting parts of
server-everything (npm, stdio) and the conformance upstream (stdio), and a gateway process on it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.gateway.harness import REPO, Gateway, run_gateway
from tests.gateway.risk.servers import install_npm_servers, npm_bin

POLICY = """
identities:
  reader: {roles: [reader]}
  other: {roles: [other]}
  alice: {roles: [approver]}
roles:
  reader:
    grants: ["everything__get-resource-links", "everything__toggle-subscriber-updates", "conf__test_embedded_resource"]
    resources:
      everything: ["demo://resource/static/document/*", "demo://resource/dynamic/text/*"]
      conf: ["test://static-text", "test://static-binary", "test://template/*/data", "test://embedded-resource"]
    prompts: ["everything__simple-prompt", "everything__args-prompt", "everything__completable-prompt", "conf__*"]
  other:
    grants: ["everything__toggle-subscriber-updates"]
    resources:
      everything: ["demo://resource/dynamic/text/*"]
      conf: ["test://template/{id}/data", "test://template/123/data"]  # the template, one expansion
  approver: {}
rules:
  - id: approve-binary-read
    effect: approve
    resources: {conf: ["test://static-binary"]}
    reason: binary reads are reviewed by a person
    approvers: [approver]
  - id: approve-args-prompt
    effect: approve
    prompts: ["everything__args-prompt"]
    reason: this prompt is reviewed by a person
    approvers: [approver]
"""
IDENTITIES = ["reader", "other", "alice"]
NOT_FOUND = -32002
DOC = "demo://resource/static/document/architecture.md"


def upstreams() -> str:
    return f"""
servers:
  everything:
    command: {npm_bin("everything")}
  conf:
    command: {sys.executable}
    args: ["-m", "tests.upstreams.conformance_server", "--stdio"]
    cwd: {REPO}
"""


@contextlib.contextmanager
def start_gateway(tmp: Path) -> Iterator[Gateway]:
    """A gateway on ``POLICY`` in front of server-everything and the conformance upstream (both stdio)."""
    install_npm_servers()
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    env = {"WARDEN_APPROVAL_POLL_S": "0.1", "WARDEN_APPROVAL_HOLD_S": "0.2", "WARDEN_LIST_PAGE_SIZE": "3"}
    with run_gateway(tmp, policy_dir, upstreams(), IDENTITIES, **env) as gateway:
        yield gateway
