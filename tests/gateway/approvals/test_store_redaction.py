"""gateway/approvals/store.py: recording held calls, reading them back, listing the pending ones."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from gateway.approvals.store import ApprovalStore, ApprovalStoreError
from gateway.redact import REDACTED, redact
from gateway.types import Decision, Identity, ToolCall

SECRET = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.fixture
def store(sqlite_engine: Engine) -> ApprovalStore:
    return ApprovalStore(sqlite_engine)


def make_call(call_id: str = "call-1") -> ToolCall:
    arguments = {"path": "/notes/q3.md", "content": f"key is {SECRET}", "ssn": "123-45-6789"}
    return ToolCall(name="notes__write", server="notes", tool="write", arguments=arguments, call_id=call_id)


IDENTITY = Identity("writer-agent", frozenset({"writer"}))
DECISION = Decision("approve", ("writes-need-approval",), "writes are reviewed", approver_roles=("lead", "ops"))


def test_create_records_a_pending_approval_with_its_expiry(store: ApprovalStore) -> None:
    call = make_call()
    approval = store.create(call, IDENTITY, DECISION, redact(call.arguments, frozenset({"ssn"})), ttl_s=90)
    assert approval.id.startswith("apr_") and len(approval.id) == 16
    assert approval.state == "pending"
    assert approval.expires_at - approval.created_at == timedelta(seconds=90)
    assert (approval.identity, approval.server, approval.tool, approval.tool_name) == (
        "writer-agent", "notes", "write", "notes__write",
    )  # fmt: skip
    assert approval.args_hash == call.args_hash
    assert approval.rule_ids == '["writes-need-approval"]'
    assert approval.approver_roles == '["lead","ops"]'
    assert approval.decided_at is None and approval.decided_by is None


def test_get_reads_back_what_was_created(store: ApprovalStore) -> None:
    call = make_call()
    created = store.create(call, IDENTITY, DECISION, redact(call.arguments), ttl_s=60)
    fetched = store.get(created.id)
    assert fetched is not None
    assert fetched.model_dump() == created.model_dump()
    assert fetched.expires_at.tzinfo is not None
    assert store.get("apr_doesnotexist") is None


def test_stored_arguments_are_redacted(store: ApprovalStore, sqlite_path: Path) -> None:
    call = make_call()
    approval = store.create(call, IDENTITY, DECISION, redact(call.arguments, frozenset({"ssn"})), ttl_s=60)
    assert approval.arguments == (f'{{"content":"key is {REDACTED}","path":"/notes/q3.md","ssn":"{REDACTED}"}}')
    raw = sqlite3.connect(sqlite_path)
    dump = "\n".join(raw.iterdump())
    raw.close()
    assert SECRET not in dump and "123-45-6789" not in dump


def test_list_pending_skips_decided_and_expired_approvals(store: ApprovalStore, sqlite_engine: Engine) -> None:
    ids = [store.create(make_call(f"call-{n}"), IDENTITY, DECISION, {}, ttl_s=600).id for n in range(4)]
    with sqlite_engine.begin() as conn:
        conn.execute(text("UPDATE approvals SET state = 'denied' WHERE id = :id"), {"id": ids[1]})
        conn.execute(
            text("UPDATE approvals SET expires_at = '2000-01-01 00:00:00.000000' WHERE id = :id"), {"id": ids[2]}
        )
    assert [a.id for a in store.list_pending()] == [ids[0], ids[3]]


def test_ttl_must_be_positive(store: ApprovalStore) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        store.create(make_call(), IDENTITY, DECISION, {}, ttl_s=0)


def test_database_failures_raise_approval_store_error(store: ApprovalStore, sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(text("DROP TABLE approvals"))
    with pytest.raises(ApprovalStoreError):
        store.create(make_call(), IDENTITY, DECISION, {}, ttl_s=60)
    with pytest.raises(ApprovalStoreError):
        store.get("apr_x")
    with pytest.raises(ApprovalStoreError):
        store.list_pending()


def test_an_approvers_reason_is_stored_and_served_redacted(store: ApprovalStore, sqlite_path: Path) -> None:
    from datetime import UTC, datetime

    call = make_call()
    approval = store.create(call, IDENTITY, DECISION, redact(call.arguments), ttl_s=60)
    reason = f"ok, used {SECRET} and Authorization: Bearer abcdefghijklmnop1234 to check\x00"
    decided = store.decide(approval.id, "approve", "alice", reason, datetime.now(UTC))
    fetched = store.get(approval.id)
    assert fetched is not None
    for served in (decided.decided_reason, fetched.decided_reason, fetched.public().model_dump_json()):
        assert served is not None and SECRET not in served and "abcdefghijklmnop1234" not in served
    assert decided.decided_reason is not None and decided.decided_reason.startswith("ok, used [REDACTED]")
    raw = sqlite3.connect(sqlite_path)
    dump = "\n".join(raw.iterdump())
    raw.close()
    assert SECRET not in dump and "abcdefghijklmnop1234" not in dump
