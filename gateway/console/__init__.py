"""The web console: server-rendered pages for the people who approve, audit and operate.

Owns: the ``/console`` pages (sign-in, approvals inbox, audit, operations, charts), their
static files and templates (package data: no Node build step), and the redirect that takes a
browser opening an approval link to the console. ``install(app)`` adds all of it.

Pages are HTTP glue over the same library the JSON API uses (``approvals.desk``,
``audit.query``, ``identities``, ``policy.explain``, ``pins``, ``risk.classify``) and the same role checks
(``deps.role_problem``). They accept only the session cookie (``access.py``); every state
change checks a CSRF token.

Must never: accept an API key on a page, decide policy, or write the audit log except
through ``AuditWriter.record``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from gateway.console import approvals, audit, charts, ops, pins, signin
from gateway.console.access import PREFIX, ConsoleError
from gateway.console.front import ConsoleFront
from gateway.console.render import error_page


def _router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("")
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/approvals", status_code=303)

    for part in (signin, approvals, audit, pins, ops, charts):
        router.include_router(part.router)
    return router


def install(app: FastAPI) -> None:
    """Add the console's pages, static files, error pages and approval-link redirect to ``app``."""
    app.include_router(_router())
    app.mount(f"{PREFIX}/static", StaticFiles(directory=Path(__file__).parent / "static"), name="console-static")
    app.add_exception_handler(ConsoleError, error_page)
    app.add_middleware(ConsoleFront)
