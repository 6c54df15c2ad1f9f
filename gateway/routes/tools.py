"""`/admin/tools`: review tool definitions held back from agents (tool pinning, `gateway/pins.py`).

HTTP glue only. The caller authenticates with its API key and must hold the `admin` role in
the policy files. `GET /admin/tools/pending` lists definitions waiting for review (new tools,
changed definitions) with the definition itself; `POST /admin/tools/{id}/accept|reject`
decides one. The desk audits every decision before applying it.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, HTTPException

from gateway.deps import GatewayDep
from gateway.models import ToolPinPublic
from gateway.pins import PinNotFound, PinVerdict
from gateway.routes.admin import AdminDep

router = APIRouter(prefix="/admin/tools", tags=["admin"])


@router.get("/pending")
async def pending(gateway: GatewayDep, _admin: AdminDep) -> list[ToolPinPublic]:
    return await anyio.to_thread.run_sync(gateway.pins.store.pending)


@router.post("/{pin_id}/{verdict}")
async def decide(pin_id: int, verdict: str, gateway: GatewayDep, admin: AdminDep) -> ToolPinPublic:
    """Accept (agents see the definition from now on) or reject (it stays hidden) a pending definition."""
    if verdict not in ("accept", "reject"):
        raise HTTPException(404, "use POST /admin/tools/{id}/accept or /admin/tools/{id}/reject")
    chosen: PinVerdict = "accept" if verdict == "accept" else "reject"
    try:
        return await gateway.pins.decide(pin_id, chosen, admin)
    except PinNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
