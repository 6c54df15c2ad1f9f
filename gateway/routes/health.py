"""`/healthz` (the process answers), `/readyz` (storage, policy and upstreams), `/metrics` (Prometheus).

`/healthz` is public. `/readyz` answers everyone with the verdict, the database state and how
many upstreams are ready; upstream names, transports, tool counts and last errors only to keys
of an identity holding one of ``ops_roles`` (or to anyone with ``health_details: public``).
`/metrics` follows ``metrics_access``: off (404), ops keys (default), or public.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from gateway.deps import GatewayDep, OpsViewerDep, bearer_identity, require_ops

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(gateway: GatewayDep, ops: OpsViewerDep) -> JSONResponse:
    """Ready when the database answers, a policy is loaded and at least one upstream is connected."""

    def ping() -> None:
        with gateway.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await anyio.to_thread.run_sync(ping)
        database = "ok"
    except Exception as exc:  # boundary: report, don't raise
        database = f"error: {type(exc).__name__}"
    upstreams: dict[str, Any] = {
        s.name: {
            "transport": s.transport,
            "state": s.state,
            "tools": s.tools,
            "last_error": s.last_error,
            "restarts": s.restarts,
        }
        for s in gateway.pool.statuses()
    }
    any_ready = any(u["state"] == "ready" for u in upstreams.values()) or not upstreams
    ready = database == "ok" and any_ready
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "database": database,
        "policy": "loaded",
        "upstreams_ready": sum(u["state"] == "ready" for u in upstreams.values()),
        "upstreams_total": len(upstreams),
    }
    if ops or gateway.settings.health_details == "public":
        body["upstreams"] = upstreams
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(gateway: GatewayDep, request: Request) -> Response:
    if gateway.settings.metrics_access == "off":
        raise HTTPException(404, "metrics are off (metrics_access)")
    if gateway.settings.metrics_access == "ops":
        await require_ops(gateway, await bearer_identity(request, gateway))
    for status in gateway.pool.statuses():
        gateway.metrics.upstream_up.labels(status.name).set(1 if status.state == "ready" else 0)
    return Response(gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)
