"""Sign-in and sign-out pages. HTTP glue: ``IdentityStore`` checks the key, ``SessionStore`` keeps the session.

    GET  /console/login?next=/console/...   the form (a double-submit CSRF cookie for it)
    POST /console/login                      key + csrf -> session cookie, then back to ``next``
    POST /console/logout                     csrf -> the session row is deleted, the cookie cleared

A key is exchanged once: the browser then holds only the session cookie (HttpOnly,
SameSite=Lax, Secure over TLS). Only identities holding one of ``console_roles`` may sign in,
so an agent's key opens no console session. Sign-ins and sign-outs are audited.

Must never: put the key or the session token in a URL, a page or a log line.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import Annotated

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gateway.console.access import COOKIE, LOGIN_COOKIE, PREFIX, CheckedDep, safe_next, secure_cookies, sessions
from gateway.console.render import SECURITY_HEADERS, page
from gateway.deps import GatewayDep
from gateway.state import GatewayState
from gateway.types import AuditEvent

router = APIRouter()


async def _audit(gateway: GatewayState, method: str, identity: str, allowed: bool, reason: str) -> None:
    event = AuditEvent(
        call_id=uuid.uuid4().hex,
        phase="decision",
        method=method,
        identity=identity,
        server="console",
        effect="allow" if allowed else "deny",
        reason=reason,
        outcome="ok" if allowed else "denied",
    )
    await gateway.audit.record(event)


def _login_form(request: Request, gateway: GatewayState, target: str, status: int = 200, error: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, status=status, csrf=token, next=target, error=error)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request, gateway),
        path=f"{PREFIX}/login",
    )
    return response


@router.get("/login")
async def login_page(request: Request, gateway: GatewayDep, next: str = "") -> Response:
    return _login_form(request, gateway, safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    gateway: GatewayDep,
    key: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    target = safe_next(next)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return _login_form(request, gateway, target, 403, "The sign-in form expired: try again.")
    try:
        found = await anyio.to_thread.run_sync(gateway.identities.key_of, key.strip())
    except Exception:  # boundary: the identity store failing must reject, never admit
        return _login_form(request, gateway, target, 503, "The identity store is unavailable: try again.")
    if found is None or found.id is None:
        return _login_form(request, gateway, target, 401, "That key is not valid or has been revoked.")
    allowed = set(gateway.settings.console_roles) & gateway.policies.current.roles_of(found.name)
    if not allowed:
        reason = "holds none of the console roles; agents' keys work on the MCP and API routes only"
        await _audit(gateway, "console/sign-in", found.name, False, reason)
        return _login_form(request, gateway, target, 403, f"Identity {found.name} {reason}.")
    await _audit(gateway, "console/sign-in", found.name, True, f"roles {sorted(allowed)}")
    store = sessions(gateway)
    await anyio.to_thread.run_sync(store.prune)  # sessions nobody came back to
    previous = request.cookies.get(COOKIE)
    if previous:  # signing in again (maybe as someone else) ends the session this browser had
        await anyio.to_thread.run_sync(store.close, previous)
    _, token = await anyio.to_thread.run_sync(store.open, found.name, found.id)
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="lax", secure=secure_cookies(request, gateway), path=PREFIX
    )
    response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post("/logout")
async def logout(request: Request, gateway: GatewayDep, user: CheckedDep) -> Response:
    token = request.cookies.get(COOKIE, "")
    await anyio.to_thread.run_sync(sessions(gateway).close, token)
    await _audit(gateway, "console/sign-out", user.identity, True, "signed out")
    response = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
