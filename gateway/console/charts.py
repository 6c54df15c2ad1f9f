"""The charts page for auditors: decisions over time by effect, top denied tools, latency percentiles.

    GET /console/charts?hours=24

HTTP glue over ``audit.query``: counts per time bucket come from ``count_events`` (one indexed,
grouped query per bucket), latencies from the newest outcome events through ``query_events``
(at most ``LATENCY_SAMPLE`` of them). ``svg.py`` draws.

Must never: read the audit log other than through ``audit.query``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from gateway.audit.query import MAX_PAGE, EventFilter, count_events, query_events
from gateway.console import svg
from gateway.console.access import AuditorUser
from gateway.console.render import page
from gateway.deps import GatewayDep
from gateway.models import utcnow

router = APIRouter(prefix="/charts")

BUCKETS = 24
LATENCY_SAMPLE = 5000
EFFECTS = ("allow", "approve", "deny")


def _over_time(engine: Engine, hours: int) -> dict[str, Any]:
    end = utcnow().replace(second=0, microsecond=0) + timedelta(minutes=1)
    width = timedelta(hours=hours) / BUCKETS
    labels, series = [], {effect: [0] * BUCKETS for effect in EFFECTS}
    for i in range(BUCKETS):
        since = end - width * (BUCKETS - i)
        labels.append(since.strftime("%H:%M" if hours <= 48 else "%m-%d"))
        where = EventFilter(phase="decision", since=since, until=since + width)
        for row in count_events(engine, where, ["effect"]):
            if row.group["effect"] in series:
                series[str(row.group["effect"])][i] = row.events
    return {"labels": labels, "series": series, "since": end - width * BUCKETS}


def _latencies(engine: Engine, where: EventFilter) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"total": [], "upstream": []}
    cursor = None
    while sum(map(len, found.values())) < 2 * LATENCY_SAMPLE:
        page_ = query_events(engine, where, cursor, MAX_PAGE, "desc")
        for event in page_.events:
            if event.latency_total_ms is not None:
                found["total"].append(event.latency_total_ms)
            if event.latency_upstream_ms is not None:
                found["upstream"].append(event.latency_upstream_ms)
        if page_.next_cursor is None:
            break
        cursor = page_.next_cursor
    return found


def _charts(engine: Engine, hours: int) -> dict[str, Any]:
    timeline = _over_time(engine, hours)
    since = timeline["since"]
    denied = count_events(engine, EventFilter(phase="decision", effect="deny", since=since), ["server", "tool"])
    top = [(f"{r.group['server']}/{r.group['tool']}", float(r.events)) for r in denied[:10]]
    lat = _latencies(engine, EventFilter(phase="outcome", since=since))
    rows = []
    for kind, values in lat.items():
        for q in (0.5, 0.9, 0.99):
            value = svg.percentile(values, q)
            if value is not None:
                rows.append((f"{kind} p{round(q * 100)}", round(value, 2)))
    return {
        "timeline": svg.stacked_bars(timeline["labels"], timeline["series"], f"decisions per effect, last {hours} h"),
        "denied": svg.horizontal_bars(top, "top denied tools"),
        "latency": svg.horizontal_bars(rows, "latency percentiles", " ms", colour="#2456a6"),
        "samples": len(lat["total"]),
        "decisions": sum(sum(v) for v in timeline["series"].values()),
    }


@router.get("")
async def charts(
    request: Request, gateway: GatewayDep, user: AuditorUser, hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24
) -> Response:
    drawn = await anyio.to_thread.run_sync(_charts, gateway.engine, hours)
    roles = gateway.policies.current.roles_of(user.identity)
    return page(request, "charts.html", user, roles=roles, hours=hours, **drawn)
