"""Operations pages for admins. HTTP glue: the pool reports health, ``IdentityStore`` mints and revokes
keys, ``policy.explain`` explains.

    GET  /console/ops?identity=&tool=&args=      upstreams, tool definitions waiting for acceptance
                                                 (``pins.py``), every tool's risk, identities, the
                                                 live policy, an explanation
    POST /console/ops/identities                 csrf + name -> a new key, shown on this response only
    POST /console/ops/identities/{name}/revoke   csrf -> every active key of ``name`` revoked

Every page needs the ``admin`` role; key changes are audited (method ``console/identity``).

Must never: show a key except once, in the response that created it; store it anywhere.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gateway.console.access import PREFIX, AdminUser, CheckedDep
from gateway.console.pins import pending_pins
from gateway.console.render import SECURITY_HEADERS, page
from gateway.console.risk import tool_table
from gateway.console.sessions import SignedIn
from gateway.deps import GatewayDep
from gateway.policy import explain
from gateway.state import GatewayState
from gateway.types import AuditEvent, Identity, ToolCall

router = APIRouter(prefix="/ops")


def _explanation(gateway: GatewayState, identity: str, tool: str, args: str) -> dict[str, Any] | None:
    """``explain`` for the form's identity, tool and JSON arguments; an error message when they are bad."""
    if not identity or not tool:
        return None
    try:
        arguments = json.loads(args or "{}")
    except ValueError as exc:
        return {"error": f"the arguments are not JSON: {exc}"}
    if not isinstance(arguments, dict):
        return {"error": "the arguments must be a JSON object"}
    policy = gateway.policies.current
    server, upstream = gateway.pool.split(tool)
    call = ToolCall(tool, server, upstream, arguments, call_id="explain")
    result = explain(policy, call, Identity(identity, policy.roles_of(identity)))
    shown = [t for t in result.traces if t.rule.kind == "tool" and t.rule.tools.matches(tool)]
    return {"result": result, "traces": shown, "redacted": sorted(policy.redact_fields(tool))}


async def _ops_page(
    request: Request, gateway: GatewayState, user: SignedIn, status: int = 200, **extra: Any
) -> Response:
    keys = await anyio.to_thread.run_sync(gateway.identities.list)
    policy = gateway.policies.current
    return page(
        request,
        "ops.html",
        user,
        status=status,
        roles=policy.roles_of(user.identity),
        upstreams=gateway.pool.statuses(),
        pending_pins=await pending_pins(gateway),
        tools=tool_table(gateway),
        keys=keys,
        policy=policy,
        **extra,
    )


@router.get("")
async def ops(
    request: Request, gateway: GatewayDep, user: AdminUser, identity: str = "", tool: str = "", args: str = "{}"
) -> Response:
    form = {"identity": identity, "tool": tool, "args": args}
    return await _ops_page(request, gateway, user, form=form, explained=_explanation(gateway, identity, tool, args))


async def _audit_key_change(gateway: GatewayState, admin: str, name: str, action: str) -> None:
    await gateway.audit.record(
        AuditEvent(
            call_id=uuid.uuid4().hex,
            phase="decision",
            method="console/identity",
            identity=admin,
            server="console",
            tool=action,
            arguments={"name": name},
            effect="allow",
            reason=f"{action} by {admin} in the console",
            outcome="ok",
        )
    )


@router.post("/identities")
async def create_identity(
    request: Request,
    gateway: GatewayDep,
    user: AdminUser,
    _checked: CheckedDep,
    name: Annotated[str, Form(max_length=64)],
) -> Response:
    form = {"identity": "", "tool": "", "args": "{}"}
    try:
        created, key = await anyio.to_thread.run_sync(gateway.identities.create, name.strip())
    except ValueError as exc:
        return await _ops_page(request, gateway, user, 422, form=form, explained=None, error=str(exc))
    await _audit_key_change(gateway, user.identity, created.name, "create")
    return await _ops_page(request, gateway, user, 201, form=form, explained=None, created=created, new_key=key)


@router.post("/identities/{name}/revoke")
async def revoke_identity(name: str, gateway: GatewayDep, user: AdminUser, _checked: CheckedDep) -> Response:
    try:
        await anyio.to_thread.run_sync(gateway.identities.revoke, name)
    except ValueError:
        pass  # an invalid name has no key to revoke; the page shows the unchanged list
    else:
        await _audit_key_change(gateway, user.identity, name, "revoke")
    return RedirectResponse(f"{PREFIX}/ops", status_code=303, headers=SECURITY_HEADERS)
