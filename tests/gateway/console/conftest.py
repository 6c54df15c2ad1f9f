"""The console tests' setup: a real gateway (`warden gateway serve`) on a policy with people and an
agent, in front of the real notes upstream, and a real Chromium driven by Playwright.

Debian's `chromium` (`apt-get install chromium`) and the `playwright` package are required: when
either is missing the browser tests FAIL, they are never skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.harness import REPO, Gateway, NotesUpstream, run_gateway, upstreams_yaml

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "screenshots"
IDENTITIES = ["writer-agent", "lead", "alice", "bob", "root"]
POLICY = """
identities:
  writer-agent: {roles: [writer]}
  lead: {roles: [writer, approver]}
  alice: {roles: [approver]}
  bob: {roles: [auditor]}
  root: {roles: [admin, auditor, approver]}
roles:
  writer: {grants: ["notes__*", "time__*"]}
  approver: {}
  auditor: {}
  admin: {}
rules:
  - id: deny-delete
    effect: deny
    tools: [notes__delete_note]
    reason: notes are never deleted by agents
  - id: approve-publish
    effect: approve
    tools: [notes__add_note]
    when: 'args.title.startsWith("publish")'
    reason: publishing needs a human
    approvers: [approver]
redact:
  - tools: ["notes__add_note"]
    fields: ["secret"]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> Iterator[Gateway]:
    """A gateway whose held calls answer `pending` after one second (the agent then retries)."""
    policy_dir = tmp_path_factory.mktemp("console-policy")
    (policy_dir / "policy.yaml").write_text(POLICY)
    env = {"WARDEN_APPROVAL_HOLD_S": "1", "WARDEN_APPROVAL_POLL_S": "0.1", "WARDEN_APPROVAL_TTL_S": "600"}
    with run_gateway(tmp_path_factory.mktemp("gw"), policy_dir, upstreams_yaml(notes.url), IDENTITIES, **env) as gw:
        yield gw


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("the `playwright` package is missing: pip install -e '.[dev]'", pytrace=False)
    if shutil.which(str(CHROMIUM)) is None:
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (.ci/run does)", pytrace=False)
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()
