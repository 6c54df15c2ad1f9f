"""Who is using the console: the session cookie, the CSRF check, the roles a page needs.

Owns: the cookie's name and attributes, turning it into a ``SignedIn`` (or a redirect to the
sign-in page), checking the synchronizer CSRF token on every state change, and the role
dependencies of the console's pages (the same ``deps.role_problem`` the JSON API uses).

Console pages accept nothing but the cookie: an ``Authorization`` header is ignored here,
so an agent's API key opens no page; it works on the MCP and API routes only.

Must never: log or render the session token; accept a state change without the CSRF token.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote

import anyio
from fastapi import Depends, Request

from gateway.console.sessions import SessionStore, SignedIn
from gateway.deps import GatewayDep, role_problem
from gateway.state import GatewayState

COOKIE = "warden_console"
LOGIN_COOKIE = "warden_console_login"
"""Double-submit token of the sign-in form (there is no session yet to hold one)."""
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
PREFIX = "/console"


class ConsoleError(Exception):
    """An error page (``status``, ``message``) or, with ``location``, a redirect."""

    def __init__(self, status: int, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.location = location


def sessions(gateway: GatewayState) -> SessionStore:
    settings = gateway.settings
    return SessionStore(gateway.engine, settings.console_idle_s, settings.console_session_max_s)


def secure_cookies(request: Request, gateway: GatewayState) -> bool:
    """Cookies get ``Secure`` when served over TLS or when people reach the gateway by an https URL."""
    base = gateway.settings.public_base_url or ""
    return request.url.scheme == "https" or base.startswith("https://")


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a console path only (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/approvals"


async def _session(request: Request, gateway: GatewayState, touch: bool) -> SignedIn:
    token = request.cookies.get(COOKIE)
    found = await anyio.to_thread.run_sync(sessions(gateway).find, token, None, touch) if token else None
    if found is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise ConsoleError(303, "sign in first", f"{PREFIX}/login?next={quote(here, safe='')}")
    request.state.console_user = found  # for error pages (header, sign-out form)
    request.state.console_roles = gateway.policies.current.roles_of(found.identity)
    return found


async def signed_in(request: Request, gateway: GatewayDep) -> SignedIn:
    """The person behind the session cookie; otherwise a redirect to sign-in that comes back here."""
    return await _session(request, gateway, touch=True)


async def watching(request: Request, gateway: GatewayDep) -> SignedIn:
    """``signed_in`` for a page's own polling: it does not keep the session from going idle."""
    return await _session(request, gateway, touch=False)


UserDep = Annotated[SignedIn, Depends(signed_in)]
WatcherDep = Annotated[SignedIn, Depends(watching)]


async def checked(request: Request, user: UserDep) -> SignedIn:
    """``signed_in`` for a state change: the request must echo the session's CSRF token."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), user.csrf_token.encode()):
        raise ConsoleError(403, "the form's CSRF token is missing or wrong: reload the page and try again")
    return user


CheckedDep = Annotated[SignedIn, Depends(checked)]


def need_role(role: str) -> object:
    """A dependency: the signed-in person when the live policy gives them ``role``; a 403 page otherwise."""

    async def holder(gateway: GatewayDep, user: UserDep) -> SignedIn:
        problem = role_problem(gateway, user.identity, role)
        if problem is not None:
            raise ConsoleError(403, problem)
        return user

    return Depends(holder)


AuditorUser = Annotated[SignedIn, need_role("auditor")]
AdminUser = Annotated[SignedIn, need_role("admin")]
