"""Approvals: tool calls held until a human decides.

Owns: the ``approvals`` table and every state transition of a row in it.

    pending ──approve──▶ approved ──consume (exact scope, once)──▶ consumed
       │  └──deny──▶ denied
       └──expire (undecided past expires_at)──▶ expired

An approval covers exactly one call: it keeps the request ``kind`` (``ToolCall.kind``: a
tool call, resource read, prompt get ...), the public name, the upstream server and tool
(or URI, or prompt name), ``tool_hash`` (the definition the agent called: a changed
definition is never covered), ``args_hash`` of the REAL arguments (so an approved call can
only be replayed with identical arguments) and, for display only, the arguments redacted.
Every one of them is matched when a pending approval is joined or a granted one is used:
names and arguments alone do not tell the kinds apart (an upstream may offer a tool and a
prompt ``doc``, both ``server__doc``; unprefixed, a resource ``x://doc`` and a prompt named
``x://doc`` whose argument ``uri`` makes its arguments a read's). ``tool_hash`` is empty for
a resource read (what is approved is the server's own URI, matched as ``tool``).
A rule may widen that (``scope: {match: tool, ttl_s}``): a granted ``tool`` approval
covers the same identity calling the same tool (same kind) with any arguments the same
rules still hold for approval, until ``valid_until``; it is never consumed.
Its id reads ``apr_`` plus 12 random characters of ``[a-z0-9]``.

Every transition is one conditional ``UPDATE ... WHERE state = <expected>`` whose
row count says whether this caller won: two deciders, or two retries racing for one
exact approval, cannot both succeed. Who may decide is the pure ``decider_problem``.
On PostgreSQL a decision also sends ``pg_notify('warden_approvals', <id>)`` in the same
transaction, delivered when it commits: held calls in every process wake (``approvals.wake``).

Methods are synchronous and short; async callers run them with
``anyio.to_thread.run_sync``. Every database failure surfaces as
``ApprovalStoreError`` so the gateway can deny the call (fail closed).

Must never: store unredacted arguments; forward or audit a call (``approvals.desk``
audits transitions through the audit writer).
"""

from __future__ import annotations

import builtins
import json
import secrets
import string
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, or_, select

from gateway.approvals.wake import CHANNEL
from gateway.audit.storable import clean_text
from gateway.models import Approval, utcnow
from gateway.redact import redact, redact_text
from gateway.types import Decision, Identity, ToolCall, canonical_json

_ID_ALPHABET = string.ascii_lowercase + string.digits
Verdict = Literal["approve", "deny"]


class ApprovalStoreError(Exception):
    """The approval store could not be read or written. The gateway must deny the call."""


class ApprovalNotFound(LookupError):
    """No approval has this id."""


class ApprovalConflict(Exception):
    """The approval is not pending any more (decided, consumed or expired); nothing changed."""

    def __init__(self, message: str, approval: Approval) -> None:
        super().__init__(message)
        self.approval = approval


class ApprovalForbidden(PermissionError):
    """The decider may not decide this approval (missing role, or its own call)."""


def new_approval_id() -> str:
    return "apr_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def decider_problem(approval: Approval, decider: str, roles: frozenset[str]) -> str | None:
    """Why ``decider`` (holding ``roles``) may not decide ``approval``, or None when it may."""
    if decider == approval.identity:
        return f"identity {decider!r} requested this call and cannot decide its own approval"
    needed = json.loads(approval.approver_roles)
    if not roles & set(needed):
        held = sorted(roles) or "no roles"
        return f"identity {decider!r} holds {held}; deciding {approval.id} needs one of the roles {needed}"
    return None


def is_expired(approval: Approval, now: datetime) -> bool:
    return approval.state == "pending" and approval.expires_at <= now


def conflict(approval: Approval, now: datetime) -> ApprovalConflict:
    """The error for deciding ``approval`` when it is no longer pending (or has expired)."""
    if is_expired(approval, now) or approval.state == "expired":
        when = f"{approval.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        return ApprovalConflict(f"approval {approval.id} expired at {when}", approval)
    by = f" by {approval.decided_by}" if approval.decided_by else ""
    return ApprovalConflict(f"approval {approval.id} is already {approval.state}{by}", approval)


def _same_target(call: ToolCall) -> tuple[Any, ...]:
    """What an approval must share with ``call`` to cover it, beyond identity and arguments."""
    return (
        col(Approval.kind) == call.kind,
        col(Approval.tool_name) == call.name,
        col(Approval.server) == call.server,
        col(Approval.tool) == call.tool,
        col(Approval.tool_hash) == call.definition_hash,
    )


class ApprovalStore:
    """Held calls in the ``approvals`` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        call: ToolCall,
        identity: Identity,
        decision: Decision,
        redacted_arguments: Mapping[str, Any],
        ttl_s: float,
    ) -> Approval:
        """Record ``call`` as pending until ``ttl_s`` seconds from now."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        now = utcnow()
        scope = decision.approval_scope
        approval = Approval(
            id=new_approval_id(),
            call_id=call.call_id,
            identity=identity.name,
            server=call.server,
            tool=call.tool,
            tool_name=call.name,
            # Redacted again for secret shapes: the caller's redaction covers the policy's fields.
            arguments=canonical_json(redact(redacted_arguments)),
            args_hash=call.args_hash,
            rule_ids=canonical_json(list(decision.rule_ids)),
            reason=redact_text(decision.reason),
            approver_roles=canonical_json(list(decision.approver_roles)),
            state="pending",
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
            scope=scope.match if scope is not None else "exact",
            scope_ttl_s=scope.ttl_s if scope is not None else None,
            tool_hash=call.definition_hash,
            kind=call.kind,
        )
        try:
            with Session(self._engine, expire_on_commit=False) as session:
                session.add(approval)
                session.commit()
        except SQLAlchemyError as exc:
            raise ApprovalStoreError(f"could not record approval for call {call.call_id}: {exc}") from exc
        return approval

    def get(self, approval_id: str) -> Approval | None:
        """The approval with this id, in whatever state, or None."""
        try:
            with Session(self._engine) as session:
                return session.get(Approval, approval_id)
        except SQLAlchemyError as exc:
            raise ApprovalStoreError(f"could not read approval {approval_id}: {exc}") from exc

    def list_pending(self) -> builtins.list[Approval]:
        """Approvals still waiting for a decision and not yet past their expiry, oldest first."""
        query = select(Approval).where(Approval.state == "pending", col(Approval.expires_at) > utcnow())
        return self._all(query.order_by(col(Approval.created_at), col(Approval.id)), "list pending approvals")

    def list(self, states: Collection[str] | None = None, limit: int = 100) -> builtins.list[Approval]:
        """The newest ``limit`` approvals (in ``states``, if given), newest first."""
        query = select(Approval)
        if states:
            query = query.where(col(Approval.state).in_(list(states)))
        query = query.order_by(col(Approval.created_at).desc(), col(Approval.id)).limit(limit)
        return self._all(query, "list approvals")

    def find_pending(self, identity: str, call: ToolCall, now: datetime) -> Approval | None:
        """A pending, unexpired approval of this very call (same identity, kind, tool, arguments), if any."""
        query = (
            select(Approval)
            .where(
                Approval.state == "pending",
                Approval.identity == identity,
                *_same_target(call),
                Approval.args_hash == call.args_hash,
                col(Approval.expires_at) > now,
            )
            .order_by(col(Approval.created_at))
            .limit(1)
        )
        found = self._all(query, "find a pending approval")
        return found[0] if found else None

    def find_granted(self, identity: str, call: ToolCall, decision: Decision, now: datetime) -> builtins.list[Approval]:
        """Approved, still valid approvals that cover this call, exact ones first.

        Exact: same identity, kind, tool and arguments hash. Tool scope: same identity, kind
        and tool, held by the same rules (the call still needs approval for the same reasons).
        """
        same_rules = col(Approval.rule_ids) == canonical_json(list(decision.rule_ids))
        query = (
            select(Approval)
            .where(
                Approval.state == "approved",
                Approval.identity == identity,
                *_same_target(call),
                col(Approval.valid_until) > now,
                or_(
                    (col(Approval.scope) == "exact") & (col(Approval.args_hash) == call.args_hash),
                    (col(Approval.scope) == "tool") & same_rules,
                ),
            )
            .order_by(col(Approval.scope), col(Approval.decided_at))
        )
        return self._all(query, "find a granted approval")

    def decide(self, approval_id: str, verdict: Verdict, decider: str, reason: str, now: datetime) -> Approval:
        """Move a pending, unexpired approval to approved or denied, atomically.

        Raises ``ApprovalNotFound``, or ``ApprovalConflict`` (carrying the row as it is)
        when it is no longer pending or has expired; nothing changes then.
        """
        current = self._require(approval_id)
        state = "approved" if verdict == "approve" else "denied"
        # An approver's reason is free text: a pasted token must not be stored (or served) in clear.
        stored_reason = clean_text(redact_text(reason))
        values: dict[str, Any] = {
            "state": state,
            "decided_by": decider,
            "decided_reason": stored_reason,
            "decided_at": now,
        }
        if verdict == "approve":
            usable_s = current.scope_ttl_s or (current.expires_at - current.created_at).total_seconds()
            values["valid_until"] = now + timedelta(seconds=usable_s)
        statement = (
            update(Approval)
            .where(col(Approval.id) == approval_id, col(Approval.state) == "pending", col(Approval.expires_at) > now)
            .values(**values)
        )
        if self._execute(statement, f"decide approval {approval_id}", notify=approval_id) == 1:
            return self._require(approval_id)
        raise conflict(self._require(approval_id), now)

    def consume(self, approval_id: str, now: datetime) -> bool:
        """Take the one run an approved exact approval allows. True for exactly one caller."""
        statement = (
            update(Approval)
            .where(
                col(Approval.id) == approval_id,
                col(Approval.state) == "approved",
                col(Approval.scope) == "exact",
                col(Approval.valid_until) > now,
            )
            .values(state="consumed", consumed_at=now)
        )
        return self._execute(statement, f"consume approval {approval_id}") == 1

    def expire(self, approval_id: str, now: datetime) -> bool:
        """Mark a pending approval past its expiry as expired. True for the caller that did it."""
        statement = (
            update(Approval)
            .where(col(Approval.id) == approval_id, col(Approval.state) == "pending", col(Approval.expires_at) <= now)
            .values(state="expired", decided_at=now, decided_reason="expired undecided")
        )
        return self._execute(statement, f"expire approval {approval_id}") == 1

    def due_for_expiry(self, now: datetime) -> builtins.list[Approval]:
        """Pending approvals past their expiry (not yet marked)."""
        query = select(Approval).where(Approval.state == "pending", col(Approval.expires_at) <= now)
        return self._all(query.order_by(col(Approval.expires_at)), "list expired approvals")

    def _require(self, approval_id: str) -> Approval:
        found = self.get(approval_id)
        if found is None:
            raise ApprovalNotFound(f"no approval {approval_id!r}")
        return found

    def _all(self, query: Any, what: str) -> builtins.list[Approval]:
        try:
            with Session(self._engine) as session:
                return builtins.list(session.exec(query))
        except SQLAlchemyError as exc:
            raise ApprovalStoreError(f"could not {what}: {exc}") from exc

    def _execute(self, statement: Any, what: str, notify: str | None = None) -> int:
        """Run ``statement``; on PostgreSQL, with ``notify``, announce that approval when it commits (if it changed)."""
        try:
            with self._engine.begin() as conn:
                changed = int(conn.execute(statement).rowcount)
                if changed and notify is not None and conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_notify(:channel, :id)"), {"channel": CHANNEL, "id": notify})
                return changed
        except SQLAlchemyError as exc:
            raise ApprovalStoreError(f"could not {what}: {exc}") from exc
