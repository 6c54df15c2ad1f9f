"""gateway/approvals/store.py: state transitions on SQLite and PostgreSQL: decide, consume, expire, find."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from gateway.approvals.store import (
    ApprovalConflict,
    ApprovalNotFound,
    ApprovalStore,
    decider_problem,
)
from gateway.models import utcnow
from gateway.types import ApprovalScope, Decision, Identity, RequestKind, ToolCall

WRITER = Identity("writer-agent", frozenset({"writer"}))
EXACT = Decision("approve", ("approve-publish",), "publishing needs a human", approver_roles=("approver",))
TOOL_WIDE = Decision(
    "approve", ("approve-echo",), "echoes", approver_roles=("approver",), approval_scope=ApprovalScope("tool", 600)
)


def call(arguments: dict[str, object], name: str = "notes__add_note", call_id: str = "c1") -> ToolCall:
    server, _, tool = name.partition("__")
    return ToolCall(name, server, tool, arguments, call_id)


@pytest.fixture
def store(engine: Engine) -> ApprovalStore:
    return ApprovalStore(engine)


def test_approve_then_consume_exactly_once_even_when_racing(store: ApprovalStore) -> None:
    c = call({"title": "publish q3"})
    approval = store.create(c, WRITER, EXACT, c.arguments, ttl_s=60)
    decided = store.decide(approval.id, "approve", "alice", "looks right", utcnow())
    assert (decided.state, decided.decided_by, decided.decided_reason) == ("approved", "alice", "looks right")
    assert decided.valid_until is not None and decided.valid_until > utcnow()

    start = threading.Barrier(8)
    wins: list[bool] = []

    def race() -> None:
        start.wait(timeout=10)
        wins.append(store.consume(approval.id, utcnow()))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(wins) == [False] * 7 + [True]
    consumed = store.get(approval.id)
    assert consumed is not None and consumed.state == "consumed" and consumed.consumed_at is not None


def test_a_decided_approval_cannot_be_decided_again(store: ApprovalStore) -> None:
    c = call({"title": "publish"})
    approval = store.create(c, WRITER, EXACT, c.arguments, ttl_s=60)
    store.decide(approval.id, "deny", "alice", "not now", utcnow())
    with pytest.raises(ApprovalConflict, match="already denied by alice"):
        store.decide(approval.id, "approve", "carol", "overrule", utcnow())
    after = store.get(approval.id)
    assert after is not None and (after.state, after.decided_by) == ("denied", "alice")
    assert not store.consume(approval.id, utcnow())
    with pytest.raises(ApprovalNotFound):
        store.decide("apr_nosuchthing0", "approve", "alice", "x", utcnow())


def test_an_expired_approval_cannot_be_decided_and_is_marked_once(store: ApprovalStore) -> None:
    c = call({"title": "publish"})
    approval = store.create(c, WRITER, EXACT, c.arguments, ttl_s=1)
    later = utcnow() + timedelta(seconds=2)
    with pytest.raises(ApprovalConflict, match="expired"):
        store.decide(approval.id, "approve", "alice", "late", later)
    assert [a.id for a in store.due_for_expiry(later)] == [approval.id]
    assert store.expire(approval.id, later) is True
    assert store.expire(approval.id, later) is False
    expired = store.get(approval.id)
    assert expired is not None and expired.state == "expired" and store.due_for_expiry(later) == []


def test_granted_exact_approval_covers_only_identical_calls(store: ApprovalStore) -> None:
    c = call({"title": "publish", "body": "b"})
    approval = store.create(c, WRITER, EXACT, c.arguments, ttl_s=60)
    now = utcnow()
    assert store.find_granted(WRITER.name, c, EXACT, now) == []  # pending is not granted
    assert store.find_pending(WRITER.name, c, now) is not None
    store.decide(approval.id, "approve", "alice", "ok", now)
    assert [a.id for a in store.find_granted(WRITER.name, c, EXACT, utcnow())] == [approval.id]
    changed = call({"title": "publish", "body": "other"})
    assert store.find_granted(WRITER.name, changed, EXACT, utcnow()) == []
    assert store.find_granted("lead-agent", c, EXACT, utcnow()) == []
    assert store.find_granted(WRITER.name, c, EXACT, utcnow() + timedelta(seconds=120)) == []  # past valid_until


def test_tool_scope_covers_other_arguments_for_its_ttl_and_is_never_consumed(store: ApprovalStore) -> None:
    first = call({"text": "a"}, name="notes__echo")
    approval = store.create(first, WRITER, TOOL_WIDE, first.arguments, ttl_s=60)
    assert (approval.scope, approval.scope_ttl_s) == ("tool", 600)
    now = utcnow()
    decided = store.decide(approval.id, "approve", "alice", "echo away", now)
    assert decided.valid_until is not None
    assert abs((decided.valid_until - now).total_seconds() - 600) < 1
    other = call({"text": "b"}, name="notes__echo")
    assert [a.id for a in store.find_granted(WRITER.name, other, TOOL_WIDE, utcnow())] == [approval.id]
    assert not store.consume(approval.id, utcnow())  # tool scope is reused, not consumed
    different_rules = Decision("approve", ("another-rule",), "r", ("approver",), ApprovalScope("tool", 600))
    assert store.find_granted(WRITER.name, other, different_rules, utcnow()) == []
    assert store.find_granted(WRITER.name, other, TOOL_WIDE, utcnow() + timedelta(seconds=601)) == []


def test_decider_must_hold_an_approver_role_and_not_be_the_requester(store: ApprovalStore) -> None:
    c = call({"title": "publish"})
    approval = store.create(c, WRITER, EXACT, c.arguments, ttl_s=60)
    assert decider_problem(approval, "alice", frozenset({"approver"})) is None
    own = decider_problem(approval, "writer-agent", frozenset({"writer", "approver"}))
    assert own is not None and "own" in own
    missing = decider_problem(approval, "bob", frozenset({"auditor"}))
    assert missing is not None and "approver" in missing


def test_an_approval_covers_only_the_tool_definition_it_was_requested_for(store: ApprovalStore) -> None:
    def against(definition: str, arguments: dict[str, object], name: str = "notes__add_note") -> ToolCall:
        server, _, tool = name.partition("__")
        return ToolCall(name, server, tool, arguments, "c1", definition)

    exact = store.create(against("a" * 64, {"title": "publish"}), WRITER, EXACT, {"title": "publish"}, ttl_s=60)
    wide = store.create(against("a" * 64, {"text": "x"}, "notes__echo"), WRITER, TOOL_WIDE, {"text": "x"}, ttl_s=60)
    assert (exact.tool_hash, wide.tool_hash) == ("a" * 64, "a" * 64)
    assert store.find_pending(WRITER.name, against("b" * 64, {"title": "publish"}), utcnow()) is None
    for approval in (exact, wide):
        store.decide(approval.id, "approve", "alice", "ok", utcnow())
    assert store.find_granted(WRITER.name, against("b" * 64, {"title": "publish"}), EXACT, utcnow()) == []
    assert store.find_granted(WRITER.name, against("b" * 64, {"text": "y"}, "notes__echo"), TOOL_WIDE, utcnow()) == []
    same = store.find_granted(WRITER.name, against("a" * 64, {"title": "publish"}), EXACT, utcnow())
    assert [a.id for a in same] == [exact.id]


KINDS: tuple[RequestKind, ...] = ("tool", "resource", "prompt", "completion")


def twin(kind: RequestKind, arguments: dict[str, object], call_id: str = "c1") -> ToolCall:
    """The same public name, server, upstream name, definition hash and arguments, as another kind."""
    return ToolCall("x://doc", "flat", "x://doc", arguments, call_id, "", kind)


@pytest.mark.parametrize("held", KINDS)
def test_an_approval_covers_only_the_kind_it_was_requested_for(store: ApprovalStore, held: RequestKind) -> None:
    exact = store.create(twin(held, {"uri": "x://doc"}), WRITER, EXACT, {"uri": "x://doc"}, ttl_s=60)
    wide = store.create(twin(held, {"q": "1"}), WRITER, TOOL_WIDE, {"q": "1"}, ttl_s=60)
    assert (exact.kind, wide.kind) == (held, held)
    others = [k for k in KINDS if k != held]
    for other in others:
        assert store.find_pending(WRITER.name, twin(other, {"uri": "x://doc"}), utcnow()) is None
    for approval in (exact, wide):
        store.decide(approval.id, "approve", "alice", "ok", utcnow())
    for other in others:
        assert store.find_granted(WRITER.name, twin(other, {"uri": "x://doc"}), EXACT, utcnow()) == []
        assert store.find_granted(WRITER.name, twin(other, {"q": "2"}), TOOL_WIDE, utcnow()) == []
    assert [a.id for a in store.find_granted(WRITER.name, twin(held, {"uri": "x://doc"}), EXACT, utcnow())] == [
        exact.id
    ]
    assert [a.id for a in store.find_granted(WRITER.name, twin(held, {"q": "2"}), TOOL_WIDE, utcnow())] == [wide.id]


def test_an_approval_covers_only_the_server_and_upstream_name_it_was_requested_for(store: ApprovalStore) -> None:
    """Unprefixed upstreams resolve a public name to whichever lists it: another one's is not covered."""
    held = ToolCall("x://doc", "flat", "x://doc", {"uri": "x://doc"}, "c1", "", "resource")
    approval = store.create(held, WRITER, EXACT, held.arguments, ttl_s=60)
    store.decide(approval.id, "approve", "alice", "ok", utcnow())
    elsewhere = ToolCall("x://doc", "other", "x://doc", {"uri": "x://doc"}, "c2", "", "resource")
    renamed = ToolCall("x://doc", "flat", "x://doc/", {"uri": "x://doc"}, "c3", "", "resource")
    for call_ in (elsewhere, renamed):
        assert store.find_granted(WRITER.name, call_, EXACT, utcnow()) == []
    assert [a.id for a in store.find_granted(WRITER.name, held, EXACT, utcnow())] == [approval.id]
