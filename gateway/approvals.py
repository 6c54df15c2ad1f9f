"""Approvals: tool calls held until a human decides.

Owns: the ``approvals`` table. This is the core: recording a held call, reading one
back, listing the ones still waiting. Deciding, consuming and expiring approvals
is a later issue and belongs here too.

An approval covers exactly one call: it keeps the public tool name, the upstream
server and tool, ``args_hash`` of the REAL arguments (so an approved call can only be
replayed with identical arguments) and, for display only, the arguments redacted.
Its id reads ``apr_`` plus 12 random characters of ``[a-z0-9]``.

Methods are synchronous and short; async callers run them with
``anyio.to_thread.run_sync``. Every database failure surfaces as
``ApprovalStoreError`` so the gateway can deny the call (fail closed).

Must never: store unredacted arguments; forward, decide or audit a call.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from gateway.models import Approval, utcnow
from gateway.redact import redact, redact_text
from gateway.types import Decision, Identity, ToolCall, canonical_json

_ID_ALPHABET = string.ascii_lowercase + string.digits


class ApprovalStoreError(Exception):
    """The approval store could not be read or written. The gateway must deny the call."""


def new_approval_id() -> str:
    return "apr_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


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

    def list_pending(self) -> list[Approval]:
        """Approvals still waiting for a decision and not yet past their expiry, oldest first."""
        query = (
            select(Approval)
            .where(Approval.state == "pending", col(Approval.expires_at) > utcnow())
            .order_by(col(Approval.created_at), col(Approval.id))
        )
        try:
            with Session(self._engine) as session:
                return list(session.exec(query))
        except SQLAlchemyError as exc:
            raise ApprovalStoreError(f"could not list pending approvals: {exc}") from exc
