"""`/audit`: the audit log for auditors. HTTP glue only: ``audit.query`` reads.

Every route needs `Authorization: Bearer <key>` of an identity holding the `auditor`
role in the live policy; agents cannot read the audit log.

    GET /audit/events?identity=&server=&tool=&effect=&outcome=&phase=&call_id=&rule_id=
                      &approval_id=&approval_state=&since=&until=&text=&cursor=&limit=&order=
    GET /audit/events/{seq}                       one event, its approval and its trail
    GET /audit/stats?group_by=identity&group_by=tool&<filters>
    GET /audit/export?format=jsonl|csv&<filters>  streamed, oldest first

Errors: 401 no or bad key, 403 not an auditor, 404 unknown seq, 422 a malformed or
unknown parameter or an empty time range (the body names the parameter).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gateway.audit.query import (
    MAX_PAGE,
    CountRow,
    Dimension,
    EventDetail,
    EventFilter,
    EventPage,
    Order,
    count_events,
    export_lines,
    get_event,
    iter_events,
    query_events,
)
from gateway.deps import AuditorDep, GatewayDep

router = APIRouter(prefix="/audit", tags=["audit"])


class EventQuery(EventFilter):
    cursor: int | None = Field(None, ge=0, description="next_cursor of the previous page (same filters and order).")
    limit: int = Field(100, ge=1, le=MAX_PAGE, description="Events per page.")
    order: Order = Field("asc", description="asc: oldest first; desc: newest first.")


class StatsQuery(EventFilter):
    group_by: list[Dimension] = Field(["identity"], min_length=1, description="Dimensions to count by.")


class ExportQuery(EventFilter):
    format: Literal["jsonl", "csv"] = Field("jsonl", description="jsonl: one JSON event per line; csv: a header row.")


class Stats(BaseModel):
    group_by: list[Dimension]
    rows: list[CountRow]
    total_events: int


def _filter(query: EventFilter) -> EventFilter:
    return EventFilter.model_validate(query.model_dump(include=set(EventFilter.model_fields)))


@router.get("/events")
def list_events(_auditor: AuditorDep, gateway: GatewayDep, query: Annotated[EventQuery, Query()]) -> EventPage:
    """Matching events, one keyset page at a time."""
    return query_events(gateway.engine, _filter(query), query.cursor, query.limit, query.order)


@router.get("/events/{seq}")
def read_event(_auditor: AuditorDep, gateway: GatewayDep, seq: Annotated[int, Path(ge=1)]) -> EventDetail:
    """One event with its approval (who approved, when, why) and every event of its call or approval."""
    detail = get_event(gateway.engine, seq)
    if detail is None:
        raise HTTPException(404, f"no audit event with seq {seq}")
    return detail


@router.get("/stats")
def stats(_auditor: AuditorDep, gateway: GatewayDep, query: Annotated[StatsQuery, Query()]) -> Stats:
    """Events and distinct calls per group over the filtered range."""
    rows = count_events(gateway.engine, _filter(query), query.group_by)
    return Stats(group_by=query.group_by, rows=rows, total_events=sum(row.events for row in rows))


@router.get("/export")
def export(_auditor: AuditorDep, gateway: GatewayDep, query: Annotated[ExportQuery, Query()]) -> StreamingResponse:
    """Every matching event, oldest first, streamed in chunks (constant memory on both ends)."""
    events = iter_events(gateway.engine, _filter(query))
    media = "application/x-ndjson" if query.format == "jsonl" else "text/csv"
    headers = {"Content-Disposition": f'attachment; filename="audit.{query.format}"'}
    return StreamingResponse(export_lines(events, query.format), media_type=media, headers=headers)
