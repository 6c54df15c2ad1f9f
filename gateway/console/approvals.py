"""The approvals inbox. HTTP glue: ``ApprovalStore`` reads, ``ApprovalDesk`` decides (roles, self-approval).

    GET  /console/approvals              pending calls the person may see, live (polls /rows)
    GET  /console/approvals/rows         the inbox's rows alone (what the page polls)
    GET  /console/approvals/{id}         one approval: who, what kind of request (tool call, resource read,
                                         prompt get), its name and (tools) risk, redacted arguments, rule,
                                         reason, time left
    POST /console/approvals/{id}/decide  csrf + verdict + reason -> ``desk.decide`` (exactly the API's checks)

A person sees an approval when the desk's ``may_see`` says so (the requester, or a holder of one of
its approver roles); the decide form is shown only when ``decider_problem`` finds nothing, and the
desk checks again on POST, so a forged form is refused the same way as one the page never showed.

Must never: decide anything itself, or show arguments other than the stored (redacted) ones.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gateway.approvals.store import (
    ApprovalStoreError,
    decider_problem,
)
from gateway.console.access import PREFIX, CheckedDep, ConsoleError, UserDep, WatcherDep
from gateway.console.render import SECURITY_HEADERS, page
from gateway.console.risk import held_call_risk
from gateway.console.sessions import SignedIn
from gateway.deps import GatewayDep
from gateway.models import Approval, utcnow
from gateway.routes.approvals import DECISION_REFUSALS, refusal
from gateway.state import GatewayState
from gateway.types import KIND_LABELS

router = APIRouter(prefix="/approvals")

INBOX_SIZE = 200
RECENT_SIZE = 20
DECIDED = ("approved", "denied", "expired", "consumed")


def _view(approval: Approval, gateway: GatewayState, user: SignedIn) -> dict[str, Any]:
    roles = gateway.policies.current.roles_of(user.identity)
    problem = decider_problem(approval, user.identity, roles)
    left = max(0, int((approval.expires_at - utcnow()).total_seconds()))
    return {
        "a": approval.public(),
        "what": KIND_LABELS.get(approval.kind, approval.kind),
        "may_decide": problem is None and approval.state == "pending" and left > 0,
        "why_not": problem,
        "seconds_left": left,
        "risk": held_call_risk(gateway, approval),
    }


async def _inbox(
    gateway: GatewayState, user: SignedIn, states: tuple[str, ...] = ("pending",), size: int = INBOX_SIZE
) -> list[dict[str, Any]]:
    try:
        found = await anyio.to_thread.run_sync(lambda: gateway.approvals.list(states, size))
    except ApprovalStoreError as exc:
        raise ConsoleError(503, "the approval store is unavailable; try again") from exc
    return [_view(a, gateway, user) for a in found if gateway.desk.may_see(a, user.identity)]


@router.get("")
async def inbox(request: Request, gateway: GatewayDep, user: UserDep) -> Response:
    rows = await _inbox(gateway, user)
    recent = await _inbox(gateway, user, DECIDED, RECENT_SIZE)
    roles = gateway.policies.current.roles_of(user.identity)
    return page(request, "approvals.html", user, roles=roles, rows=rows, recent=recent)


@router.get("/rows")
async def inbox_rows(request: Request, gateway: GatewayDep, user: WatcherDep) -> Response:
    return page(request, "_approval_rows.html", user, rows=await _inbox(gateway, user))


async def _visible(approval_id: str, gateway: GatewayState, user: SignedIn) -> Approval:
    try:
        approval = await anyio.to_thread.run_sync(gateway.approvals.get, approval_id)
    except ApprovalStoreError as exc:
        raise ConsoleError(503, "the approval store is unavailable; try again") from exc
    if approval is None:
        raise ConsoleError(404, f"no approval {approval_id!r}")
    if not gateway.desk.may_see(approval, user.identity):
        raise ConsoleError(403, f"identity {user.identity!r} neither requested nor may decide approval {approval_id}")
    return approval


def _detail(request: Request, gateway: GatewayState, user: SignedIn, approval: Approval, **extra: Any) -> Response:
    roles = gateway.policies.current.roles_of(user.identity)
    return page(request, "approval.html", user, roles=roles, **_view(approval, gateway, user), **extra)


@router.get("/{approval_id}")
async def show(approval_id: str, request: Request, gateway: GatewayDep, user: UserDep) -> Response:
    return _detail(request, gateway, user, await _visible(approval_id, gateway, user))


@router.post("/{approval_id}/decide")
async def decide(
    approval_id: str,
    request: Request,
    gateway: GatewayDep,
    user: CheckedDep,
    verdict: Annotated[Literal["approve", "deny"], Form()],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    reason = reason.strip()
    if not reason:
        raise ConsoleError(422, "say why: a reason is required (it is kept and shown to the agent on a denial)")
    try:
        await gateway.desk.decide(approval_id, user.identity, verdict, reason)
    except DECISION_REFUSALS as exc:
        raise ConsoleError(*refusal(exc)) from exc
    return RedirectResponse(f"{PREFIX}/approvals/{approval_id}", status_code=303, headers=SECURITY_HEADERS)
