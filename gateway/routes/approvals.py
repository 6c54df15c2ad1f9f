"""`/approvals`: list, read and decide held calls over HTTP. Glue only: the desk decides.

Every route needs `Authorization: Bearer <key>` (the same API keys agents use). A caller
sees the approvals it requested or may decide; deciding needs one of the approval's
approver roles (from the live policy) and never works on one's own call.

    GET  /approvals?state=pending|approved|denied|expired|consumed|all
    GET  /approvals/{id}
    POST /approvals/{id}/approve   {"reason": "..."}
    POST /approvals/{id}/deny      {"reason": "..."}

The key is checked before the body is read (an unauthenticated caller's body is never read),
and bodies are capped (``max_api_body_bytes``, gateway.edge: 413).

Errors: 401 no or bad key, 403 role missing or own call, 404 unknown id, 409 already
decided or expired, 422 malformed body, 503 approval store or audit log unavailable.
Nothing changes state on any of them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from gateway.approvals.store import ApprovalConflict, ApprovalForbidden, ApprovalNotFound, ApprovalStoreError, Verdict
from gateway.audit.errors import AuditError
from gateway.deps import GatewayDep, bearer_identity, json_body
from gateway.models import Approval, ApprovalPublic, ApprovalState

router = APIRouter(prefix="/approvals", tags=["approvals"])

StateFilter = ApprovalState | Literal["all"]


CallerDep = Annotated[str, Depends(bearer_identity)]


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    """Why: shown to the agent on a denial, kept on the approval and in the audit log."""


async def decision_body(request: Request, _caller: CallerDep) -> DecisionBody:
    """The body, read only once the caller is authenticated (FastAPI reads declared bodies before any dependency)."""
    return await json_body(request, DecisionBody)


BodyDep = Annotated[DecisionBody, Depends(decision_body)]


@router.get("")
async def list_approvals(
    gateway: GatewayDep,
    caller: CallerDep,
    state: StateFilter = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ApprovalPublic]:
    """Approvals the caller requested or may decide, newest first."""
    states = None if state == "all" else [state]
    try:
        found = await anyio.to_thread.run_sync(lambda: gateway.approvals.list(states, limit))
    except ApprovalStoreError as exc:
        raise HTTPException(503, "approval store unavailable") from exc
    return [a.public() for a in found if gateway.desk.may_see(a, caller)]


@router.get("/{approval_id}")
async def get_approval(approval_id: str, gateway: GatewayDep, caller: CallerDep) -> ApprovalPublic:
    return (await _visible(approval_id, gateway, caller)).public()


@router.post("/{approval_id}/approve")
async def approve(approval_id: str, body: BodyDep, gateway: GatewayDep, caller: CallerDep) -> ApprovalPublic:
    return await _decide(approval_id, "approve", body, gateway, caller)


@router.post("/{approval_id}/deny")
async def deny(approval_id: str, body: BodyDep, gateway: GatewayDep, caller: CallerDep) -> ApprovalPublic:
    return await _decide(approval_id, "deny", body, gateway, caller)


async def _visible(approval_id: str, gateway: GatewayDep, caller: str) -> Approval:
    try:
        approval = await anyio.to_thread.run_sync(gateway.approvals.get, approval_id)
    except ApprovalStoreError as exc:
        raise HTTPException(503, "approval store unavailable") from exc
    if approval is None:
        raise HTTPException(404, f"no approval {approval_id!r}")
    if not gateway.desk.may_see(approval, caller):
        raise HTTPException(403, f"identity {caller!r} neither requested nor may decide approval {approval_id}")
    return approval


async def _decide(
    approval_id: str, verdict: Verdict, body: DecisionBody, gateway: GatewayDep, caller: str
) -> ApprovalPublic:
    try:
        decided = await gateway.desk.decide(approval_id, caller, verdict, body.reason)
    except DECISION_REFUSALS as exc:
        raise HTTPException(*refusal(exc)) from exc
    return decided.public()


DECISION_REFUSALS = (ApprovalNotFound, ApprovalForbidden, ApprovalConflict, ApprovalStoreError, AuditError)
"""What deciding an approval can refuse with; `refusal` says how each answers (API and console alike)."""


def refusal(exc: Exception) -> tuple[int, str]:
    """The HTTP status and the text for a refused decision (internal errors say only what did not happen)."""
    if isinstance(exc, ApprovalNotFound):
        return 404, str(exc)
    if isinstance(exc, ApprovalForbidden):
        return 403, str(exc)
    if isinstance(exc, ApprovalConflict):
        return 409, str(exc)
    if isinstance(exc, ApprovalStoreError):
        return 503, "the approval store is unavailable; nothing was decided"
    return 503, "the audit log could not record the decision; nothing was decided"
