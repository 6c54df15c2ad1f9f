"""gateway/routes/admin.py: /admin/tools and /admin/policy/suggest, on a real gateway, admins only.

`warden gateway serve` (tests/gateway/harness.py) in front of PyPI `mcp-server-time` and
`mcp-server-git`; its policy directory already defines a `reader` role.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.harness import Gateway, rows, run_gateway

POLICY = """
identities:
  root-admin:
    roles: [admin]
  agent:
    roles: [reader]
roles:
  admin: {}
  reader:
    grants: ["time__*"]
"""
UPSTREAMS = f"""
servers:
  time:
    command: {sys.executable}
    args: ["-m", "mcp_server_time", "--local-timezone", "UTC"]
  git:
    command: {sys.executable}
    args: ["-m", "mcp_server_git"]
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("admin-risk")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    with run_gateway(tmp, policy_dir, UPSTREAMS, ["root-admin", "agent"]) as gw:
        yield gw


def get(gw: Gateway, path: str, who: str | None = "root-admin", **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {gw.keys[who]}"} if who else {}
    return httpx.get(f"{gw.url}{path}", headers=headers, params=params, timeout=120)


def post(gw: Gateway, body: dict[str, Any], who: str = "root-admin") -> httpx.Response:
    headers = {"Authorization": f"Bearer {gw.keys[who]}"}
    return httpx.post(f"{gw.url}/admin/policy/suggest", json=body, headers=headers, timeout=120)


@pytest.mark.parametrize("path", ["/admin/tools", "/admin/policy/suggest"])
def test_only_admins_see_tools_and_suggestions(gateway: Gateway, path: str) -> None:
    assert get(gateway, path, who=None).status_code == 401
    assert get(gateway, path, who="agent").status_code == 403
    assert post(gateway, {"write": True}, who="agent").status_code == 403
    assert not (gateway.policy_dir / "suggested.yaml").exists()


def test_tools_are_listed_with_their_risk(gateway: Gateway) -> None:
    tools = {t["name"]: t for t in get(gateway, "/admin/tools").json()}
    assert len(tools) == 14
    reset = tools["git__git_reset"]
    assert reset["server"] == "git" and reset["tool"] == "git_reset"
    assert reset["risk"]["classes"] == ["destructive", "writes"] and reset["risk"]["level"] == "destructive"
    assert {"source": "annotation", "class": "destructive", "detail": "destructiveHint=true"} in reset["risk"][
        "evidence"
    ]
    assert reset["definition"]["name"] == "git__git_reset" and "inputSchema" in reset["definition"]
    assert tools["time__get_current_time"]["risk"]["classes"] == ["read-only"]


def test_a_clashing_role_is_reported_and_nothing_written(gateway: Gateway) -> None:
    review = get(gateway, "/admin/policy/suggest").json()
    assert not review["passes"]
    assert any("role 'reader' is already defined" in p for p in review["problems"])
    refused = post(gateway, {"write": True})
    assert refused.status_code == 409 and "does not pass" in refused.json()["detail"]
    assert not (gateway.policy_dir / "suggested.yaml").exists()


@pytest.mark.parametrize(
    "body",
    [{"name": "../../etc/cron"}, {"name": "a/b"}, {"role_prefix": "../"}, {"write": True, "path": "/etc/passwd"}],
)
def test_paths_and_unknown_fields_are_refused(gateway: Gateway, body: dict[str, Any]) -> None:
    assert post(gateway, body).status_code == 422
    assert get(gateway, "/admin/policy/suggest", name="../x").status_code == 422
    written = [p for p in gateway.policy_dir.parent.rglob("*.yaml") if p.stem in ("cron", "b", "x")]
    assert written == []


def test_review_then_write_once_audited(gateway: Gateway) -> None:
    review = get(gateway, "/admin/policy/suggest", name="starter", role_prefix="s-").json()
    assert review["passes"] and review["existing"] == [] and "+  - id: git.git_reset.approve" in review["diff"]
    assert not (gateway.policy_dir / "starter.yaml").exists()
    written = post(gateway, {"name": "starter", "role_prefix": "s-", "write": True})
    assert written.status_code == 200, written.text
    assert (gateway.policy_dir / "starter.yaml").read_text() == review["files"][
        str(gateway.policy_dir / "starter.yaml")
    ]
    again = post(gateway, {"name": "starter", "role_prefix": "s-", "write": True})
    assert again.status_code == 409 and "--force" in again.json()["detail"]
    events = rows(
        gateway, "SELECT identity, tool, effect, reason FROM audit_events WHERE method = 'admin/policy/suggest'"
    )
    assert [(e["identity"], e["tool"], e["effect"]) for e in events][-2:] == [
        ("root-admin", "starter", "allow"),
        ("root-admin", "starter", "deny"),
    ]
