"""Audit pages for auditors. HTTP glue: ``audit.query`` reads, ``audit.verify`` checks the chain.

    GET /console/audit?<EventFilter fields>&cursor=   search, newest first, keyset pages
    GET /console/audit/events/{seq}                    one event, its approval and its call's trail
    GET /console/audit/export?format=csv|jsonl&<filters>  the current filter, streamed (as /audit/export)
    GET /console/audit/verify                          the hash chain and checkpoints, verified now

The filters are ``EventFilter`` itself (the JSON API's), so both accept and refuse the same things.
Every page needs the ``auditor`` role.

Must never: read the audit log other than through ``audit.query`` and ``audit.verify``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from gateway.audit.checkpoints import audit_keys
from gateway.audit.query import MAX_PAGE, EventFilter, export_lines, get_event, iter_events, query_events
from gateway.audit.verify import verify
from gateway.console.access import AuditorUser, ConsoleError
from gateway.console.render import SECURITY_HEADERS, page
from gateway.deps import GatewayDep
from gateway.models import ApprovalState
from gateway.types import Effect, Outcome, Phase

router = APIRouter(prefix="/audit")

PAGE = 50
FIELDS = tuple(EventFilter.model_fields)
CHOICES = {
    "effect": get_args(Effect),
    "outcome": get_args(Outcome),
    "phase": get_args(Phase),
    "approval_state": get_args(ApprovalState),
}


def _given(request: Request) -> dict[str, str]:
    """The filter fields the query string sets (empty form fields are left out)."""
    return {name: value for name in FIELDS if (value := request.query_params.get(name, "").strip())}


def _filter(given: dict[str, str]) -> EventFilter:
    try:
        return EventFilter.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConsoleError(422, f"the filter is not valid: {problems}") from exc


@router.get("")
async def search(
    request: Request,
    gateway: GatewayDep,
    user: AuditorUser,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE,
) -> Response:
    given = _given(request)
    where = _filter(given)
    found = await anyio.to_thread.run_sync(lambda: query_events(gateway.engine, where, cursor, limit, "desc"))
    paged = {**given, "limit": str(limit)} if limit != PAGE else given
    more = urlencode({**paged, "cursor": found.next_cursor}) if found.next_cursor is not None else None
    return page(
        request,
        "audit.html",
        user,
        roles=gateway.policies.current.roles_of(user.identity),
        given=given,
        events=found.events,
        query=urlencode(given),
        more=more,
        choices=CHOICES,
    )


@router.get("/events/{seq}")
async def event(seq: int, request: Request, gateway: GatewayDep, user: AuditorUser) -> Response:
    detail = await anyio.to_thread.run_sync(get_event, gateway.engine, seq)
    if detail is None:
        raise ConsoleError(404, f"no audit event with seq {seq}")
    roles = gateway.policies.current.roles_of(user.identity)
    return page(request, "event.html", user, roles=roles, detail=detail)


@router.get("/export")
async def export(
    request: Request, gateway: GatewayDep, user: AuditorUser, format: Literal["jsonl", "csv"] = "csv"
) -> Response:
    where = _filter(_given(request))
    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="audit.{format}"'}
    lines = export_lines(iter_events(gateway.engine, where), format)
    return StreamingResponse(lines, media_type=media, headers=headers)


@router.get("/verify")
async def chain(request: Request, gateway: GatewayDep, user: AuditorUser) -> Response:
    settings = gateway.settings
    signing = settings.audit_signing_key.get_secret_value() if settings.audit_signing_key else None
    _, public = audit_keys(signing, settings.audit_public_key)
    report: Any = await anyio.to_thread.run_sync(verify, gateway.engine, public)
    roles = gateway.policies.current.roles_of(user.identity)
    return page(request, "verify.html", user, roles=roles, report=report)
