"""gateway/server_requests.py on a real policy file and a real SQLite audit log: an upstream's
sampling / elicitation / roots request is decided for the identity whose call caused it, its
decision is committed before the client sees it, and any refusal (policy, audit) keeps it away
from the client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from sqlalchemy import Engine, text

from gateway.audit.writer import AuditWriter
from gateway.metrics import Metrics
from gateway.policy import PolicyStore
from gateway.server_requests import ServerRequestGuard
from tests.gateway.audit.events import allow_inserts, refuse_inserts

pytestmark = pytest.mark.anyio

POLICY = """
identities:
  agent-a: {roles: [relayer]}
  agent-c: {roles: [outsider]}
roles:
  relayer: {grants: ["relay__*"]}
  outsider: {grants: ["other__*"]}
  approver: {}
rules:
  - id: deny-sampling-secrets
    effect: deny
    sampling: ["relay"]
    when: 'params.messages[0].content.text.contains("secret")'
    reason: no secrets go to the model
  - id: approve-elicitation
    effect: approve
    elicitation: ["relay"]
    approvers: [approver]
    reason: a person looks first
"""


def sampling(text_: str) -> types.CreateMessageRequest:
    message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text=text_))
    return types.CreateMessageRequest(params=types.CreateMessageRequestParams(messages=[message], max_tokens=8))


ANSWER = types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="ok"), model="m")


def events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY seq"))]


@pytest.fixture
def policies(tmp_path: Path) -> PolicyStore:
    (tmp_path / "policy.yaml").write_text(POLICY)
    return PolicyStore(tmp_path)


async def test_an_allowed_request_is_committed_before_the_client_sees_it(
    sqlite_engine: Engine, policies: PolicyStore
) -> None:
    writer = AuditWriter(sqlite_engine)
    await writer.start()
    guard = ServerRequestGuard(policies=policies, audit=writer, metrics=Metrics())
    seen_before: list[list[dict[str, Any]]] = []

    async def send() -> types.InputResponse | types.ErrorData:
        seen_before.append(events(sqlite_engine))
        return ANSWER

    answer = await guard.bind("agent-a", "call-1", "ref-1")("relay", sampling("hello"), send)
    await writer.stop()
    assert answer == ANSWER
    assert [(e["phase"], e["effect"], e["outcome"]) for e in seen_before[0]] == [("decision", "allow", None)]
    rows = events(sqlite_engine)
    assert [(r["method"], r["phase"], r["outcome"]) for r in rows] == [
        ("sampling/createMessage", "decision", None),
        ("sampling/createMessage", "outcome", "ok"),
    ]
    assert rows[0]["server"] == "relay" and rows[0]["request_ref"] == "ref-1" and "call-1" in rows[0]["reason"]


@pytest.mark.parametrize(
    ("identity", "asked", "rule"),
    [
        ("agent-a", sampling("the secret plan"), "deny-sampling-secrets"),
        ("agent-c", sampling("hello"), "default-deny"),  # holds no grant of that server
        (
            "agent-a",
            types.ElicitRequest(
                params=types.ElicitRequestFormParams(message="q", requested_schema={"type": "object", "properties": {}})
            ),
            "approve-elicitation",
        ),
    ],
)
async def test_a_refused_request_never_reaches_the_client_and_is_audited(
    sqlite_engine: Engine, policies: PolicyStore, identity: str, asked: types.InputRequest, rule: str
) -> None:
    writer = AuditWriter(sqlite_engine)
    await writer.start()
    guard = ServerRequestGuard(policies=policies, audit=writer, metrics=Metrics())
    sent: list[bool] = []

    async def send() -> types.InputResponse | types.ErrorData:
        sent.append(True)
        return ANSWER

    answer = await guard.bind(identity, "call-1", None)("relay", asked, send)
    await writer.stop()
    assert isinstance(answer, types.ErrorData) and rule in answer.message
    assert sent == []
    (row,) = events(sqlite_engine)
    assert (row["identity"], row["effect"], row["outcome"]) == (identity, "deny", "denied")
    assert json.loads(str(row["rule_ids"])) == [rule]


async def test_an_audit_log_that_cannot_commit_refuses_the_request(
    sqlite_engine: Engine, policies: PolicyStore
) -> None:
    writer = AuditWriter(sqlite_engine)
    await writer.start()
    guard = ServerRequestGuard(policies=policies, audit=writer, metrics=Metrics())
    sent: list[bool] = []

    async def send() -> types.InputResponse | types.ErrorData:
        sent.append(True)
        return ANSWER

    refuse_inserts(sqlite_engine)
    try:
        answer = await guard.bind("agent-a", "call-1", None)("relay", sampling("hello"), send)
        admitted = await guard.bind("agent-a", "call-2", None)("relay", sampling("hello"), None)
    finally:
        allow_inserts(sqlite_engine)
        await writer.stop()
    assert isinstance(answer, types.ErrorData) and "fails closed" in answer.message
    assert isinstance(admitted, types.ErrorData)  # an input-required round is refused just the same
    assert sent == []
