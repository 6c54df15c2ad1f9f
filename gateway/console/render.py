"""Rendering console pages: the Jinja2 environment (package data, autoescaped) and error pages.

Owns: turning a template name and values into an HTML response with the headers every console
page carries (no caching, no framing, a strict Content-Security-Policy: scripts and styles
from the console's own static files only, so an injected tag cannot run).

Must never: render a value unescaped (autoescape is on for every template).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gateway.console.access import ConsoleError, SignedIn

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.autoescape = True

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


TEMPLATES.env.filters["pretty"] = _pretty
TEMPLATES.env.filters["when"] = _when


def page(
    request: Request,
    name: str,
    user: SignedIn | None,
    status: int = 200,
    roles: frozenset[str] = frozenset(),
    **values: Any,
) -> HTMLResponse:
    """Render template ``name`` for ``user`` (None on the sign-in page)."""
    context = {"user": user, "roles": roles, **values}
    response = TEMPLATES.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


async def error_page(request: Request, exc: Exception) -> Response:
    """The exception handler for ``ConsoleError``: a redirect, or an error page saying why."""
    assert isinstance(exc, ConsoleError)
    if exc.location is not None:
        return RedirectResponse(exc.location, status_code=exc.status, headers={"Cache-Control": "no-store"})
    user = getattr(request.state, "console_user", None)
    roles: frozenset[str] = getattr(request.state, "console_roles", frozenset())
    return page(request, "error.html", user, status=exc.status, roles=roles, message=exc.message)
