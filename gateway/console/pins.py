"""Tool definitions waiting for acceptance, on the Operations page. HTTP glue over ``gateway.pins``.

    POST /console/ops/tools/{id}/decide   csrf + verdict (accept|reject) -> ``ToolPins.decide``

``pending_pins`` lists what ``PinStore.pending`` holds back (server, tool, kind, first seen, the
definition, its risk) and, for a changed definition, what changed against the accepted one: each
top-level field that differs, and ``risk_change``. Deciding needs the ``admin`` role and the
session's CSRF token, and goes through ``ToolPins.decide``, the same call the API makes: it
audits (``tools/accept``, ``tools/reject``) before it applies, and agents see an accepted
definition at once.

Must never: change a pin except through ``ToolPins.decide``; write the audit log itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
import mcp_types as types
from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from gateway.audit.errors import AuditError
from gateway.console.access import PREFIX, AdminUser, CheckedDep, ConsoleError
from gateway.console.render import SECURITY_HEADERS
from gateway.console.risk import risk_view
from gateway.deps import GatewayDep
from gateway.models import ToolPinPublic
from gateway.pins import PinNotFound
from gateway.risk import classify, risk_change
from gateway.state import GatewayState

router = APIRouter(prefix="/ops/tools")


def _tool(definition: dict[str, Any]) -> types.Tool | None:
    try:
        return types.Tool.model_validate(definition)
    except ValidationError:
        return None  # a definition the SDK cannot read: shown as it is, classified as nothing


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Each top-level field of the definition that differs: its name, the accepted value, the new one."""
    fields = sorted(set(before) | set(after))
    return [
        {"field": f, "before": before.get(f), "after": after.get(f)} for f in fields if before.get(f) != after.get(f)
    ]


def pin_view(pin: ToolPinPublic, accepted: ToolPinPublic | None) -> dict[str, Any]:
    """One pending definition for the page: the pin, its risk, and what changed against ``accepted``."""
    tool = _tool(pin.definition)
    view: dict[str, Any] = {"pin": pin, "risk": risk_view(classify(tool)) if tool else None, "accepted": accepted}
    if accepted is not None:
        before = _tool(accepted.definition)
        view["changes"] = _changes(accepted.definition, pin.definition)
        view["risk_change"] = risk_change(before, tool) if before and tool else None
    return view


async def pending_pins(gateway: GatewayState) -> list[dict[str, Any]]:
    """Every definition held back from agents, oldest first, with what changed."""
    store = gateway.pins.store
    pending = await anyio.to_thread.run_sync(store.pending)
    accepted = await anyio.to_thread.run_sync(store.accepted_definitions) if pending else {}
    return [pin_view(pin, accepted.get((pin.server, pin.tool))) for pin in pending]


@router.post("/{pin_id}/decide")
async def decide(
    pin_id: int,
    gateway: GatewayDep,
    user: AdminUser,
    _checked: CheckedDep,
    verdict: Annotated[Literal["accept", "reject"], Form()],
) -> Response:
    try:
        await gateway.pins.decide(pin_id, verdict, user.identity)
    except PinNotFound as exc:
        raise ConsoleError(404, str(exc)) from exc
    except AuditError as exc:
        raise ConsoleError(503, "the audit log could not record the decision; nothing was decided") from exc
    return RedirectResponse(f"{PREFIX}/ops#tool-pins", status_code=303, headers=SECURITY_HEADERS)
