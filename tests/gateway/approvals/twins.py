"""The approval kind tests' shared setup: tests/upstreams/twins_server.py over stdio, mounted twice —
``twins`` (prefixed: the tool and the prompt ``doc`` are both ``twins__doc``) and ``flat``
(``prefix: false``: the resource ``twin://doc`` and the prompt named ``twin://doc`` share the public
name, and ``{"uri": "twin://doc"}`` is both the read's arguments and a valid prompt get's) — a policy
that holds every one of them for approval, and one request of a chosen kind as an agent makes it."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal

from mcp.shared.exceptions import MCPError

from tests.gateway.harness import REPO, Gateway, connect, run_gateway, text_of

Kind = Literal["tool", "prompt", "resource"]
URI = "twin://doc"
RULES = """
  - id: hold-tools
    effect: approve
    tools: ["doc", "twins__doc"]
    reason: tool calls on documents are reviewed
    approvers: [approver]{tool_scope}
  - id: hold-prompts
    effect: approve
    prompts: ["*"]  # also the prompt named twin://doc (a glob may not spell the colon)
    reason: prompts on documents are reviewed
    approvers: [approver]{prompt_scope}
  - id: hold-reads
    effect: approve
    resources: {{flat: ["twin://doc"]}}
    reason: reads of documents are reviewed
    approvers: [approver]{read_scope}
"""


def policy(agents: list[str], **scopes: str) -> str:
    """Agents with role ``user``, approver ``alice``; ``tool_scope=``/``prompt_scope=``/``read_scope=`` widen a rule."""
    people = "".join(f"  {name}: {{roles: [user]}}\n" for name in agents)
    rules = RULES.format(**{f"{k}_scope": scopes.get(f"{k}_scope", "") for k in ("tool", "prompt", "read")})
    return f"""
identities:
{people}  alice: {{roles: [approver]}}
roles:
  user:
    grants: ["doc", "twins__doc"]
    prompts: ["*"]  # also the prompt named twin://doc (a glob may not spell the colon)
    resources: {{flat: ["twin://doc"]}}
  approver: {{}}
rules:{rules}"""


def upstreams() -> str:
    server = f"command: {sys.executable}\n    args: [-m, tests.upstreams.twins_server]\n    cwd: {REPO}"
    return f"servers:\n  twins:\n    {server}\n  flat:\n    {server}\n    prefix: false\n"


def start(tmp: Path, text: str, agents: list[str], **overrides: str) -> AbstractContextManager[Gateway]:
    """The gateway on ``text``; calls are held 0.2 s (then answered pending) unless ``overrides`` say otherwise."""
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(text)
    env = {"WARDEN_APPROVAL_POLL_S": "0.1", "WARDEN_APPROVAL_HOLD_S": "0.2", "WARDEN_APPROVAL_TTL_S": "600"}
    return run_gateway(tmp, policy_dir, upstreams(), [*agents, "alice"], **(env | overrides))


async def attempt(gw: Gateway, who: str, kind: Kind, name: str, uri: str = URI) -> tuple[str, str]:
    """("ran", what the upstream said) or ("pending", the approval id) for one request of ``kind``."""
    async with connect(gw, who) as client:
        try:
            if kind == "tool":
                result = await client.call_tool(name, {"uri": uri})
                if result.is_error:
                    return _held(text_of(result))
                return "ran", text_of(result)
            if kind == "prompt":
                got = await client.get_prompt(name, {"uri": uri})
                return "ran", " ".join(getattr(m.content, "text", "") for m in got.messages)
            assert uri == name  # a read's only argument is its URI
            read = await client.read_resource(name)
            return "ran", " ".join(getattr(c, "text", "") for c in read.contents)
        except MCPError as exc:
            return _held(exc.error.message)


def _held(message: str) -> tuple[str, str]:
    assert message.startswith("pending approval "), message
    return "pending", message.split()[2].rstrip(":")
