"""gateway/app.py: every route authenticates before it reads a body.

FastAPI reads a declared body parameter before it runs any dependency (the key check among them),
so a route that declares one reads an unauthenticated caller's body in full. Routes take their
body through a dependency that depends on the key check instead (routes/approvals.py)."""

from __future__ import annotations

from fastapi.routing import APIRoute

from gateway.routes import admin, approvals, audit, health


def test_no_route_reads_a_body_before_its_dependencies() -> None:
    routers = (admin.router, approvals.router, audit.router, health.router)
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    assert "/approvals/{approval_id}/approve" in {r.path for r in routes}
    assert [r.path for r in routes if r.body_field is not None] == []
