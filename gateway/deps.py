"""Annotated dependency aliases for routes: the lifespan's objects, never globals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from gateway.auth import bearer_key
from gateway.state import GatewayState


def get_gateway(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


GatewayDep = Annotated[GatewayState, Depends(get_gateway)]


async def bearer_identity(request: Request, gateway: GatewayDep) -> str:
    """The identity owning the request's bearer API key; 401 without a valid key. Reads no body."""
    key = bearer_key(request.headers.get("authorization"))
    if key is None:
        raise HTTPException(
            401, "no API key: send 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        name = await anyio.to_thread.run_sync(gateway.identities.authenticate, key)
    except Exception as exc:  # boundary: the identity store failing must reject, never admit
        raise HTTPException(503, "identity store unavailable; try again") from exc
    if name is None:
        raise HTTPException(401, "the API key is not valid or has been revoked", headers={"WWW-Authenticate": "Bearer"})
    return name


def role_problem(gateway: GatewayState, name: str, role: str) -> str | None:
    """Why ``name`` may not act as ``role`` under the live policy, or None when it holds it."""
    if role not in gateway.policies.current.roles_of(name):
        return f"identity {name!r} does not hold the {role!r} role in the policy files"
    return None


def holds_ops_role(gateway: GatewayState, name: str) -> bool:
    return not set(gateway.settings.ops_roles).isdisjoint(gateway.policies.current.roles_of(name))


async def ops_viewer(request: Request, gateway: GatewayDep) -> bool:
    """Whether the request carries a valid key of an identity holding one of `ops_roles`; never raises."""
    key = bearer_key(request.headers.get("authorization"))
    if key is None:
        return False
    try:
        name = await anyio.to_thread.run_sync(gateway.identities.authenticate, key)
    except Exception:  # boundary: a failing identity store shows no details, and readiness says why
        return False
    return name is not None and holds_ops_role(gateway, name)


OpsViewerDep = Annotated[bool, Depends(ops_viewer)]
"""True for callers who may see operational details (upstream names, errors, metrics)."""


async def require_ops(gateway: GatewayDep, name: Annotated[str, Depends(bearer_identity)]) -> str:
    """The caller's identity when it holds one of `ops_roles`; 401 without a key, 403 without the role."""
    if not holds_ops_role(gateway, name):
        roles = ", ".join(gateway.settings.ops_roles)
        raise HTTPException(403, f"identity {name!r} holds none of the operator roles ({roles})")
    return name


def require_role(role: str) -> Callable[..., Awaitable[str]]:
    """A dependency: the caller's identity when the live policy gives it ``role``; 403 otherwise."""

    async def holder(gateway: GatewayDep, name: Annotated[str, Depends(bearer_identity)]) -> str:
        problem = role_problem(gateway, name, role)
        if problem is not None:
            raise HTTPException(403, problem)
        return name

    return holder


AuditorDep = Annotated[str, Depends(require_role("auditor"))]
"""An identity with the ``auditor`` role: only auditors read the audit log."""


Body = TypeVar("Body", bound=BaseModel)


async def json_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body as `model` (422 naming the fields, never echoing the input; an empty body is {}).

    For dependencies that run after the key check: FastAPI reads a declared body parameter before any
    dependency, so routes take bodies through a dependency that depends on authentication instead."""
    try:
        return model.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False, include_input=False)) from exc
