"""create_app(settings): assembles the gateway. Builds nothing at import time.

Every request first passes the edge checks (gateway.edge: Host/Origin allow list, body caps),
then its route authenticates before it reads a body. /docs and /openapi.json exist only with
``api_docs`` on. The lifespan builds the engine, stores, policy, upstream pool, audit writer and MCP
session manager once, runs the background tasks (upstream supervisors, policy watcher,
rate-limit sweep, the approval listener on PostgreSQL) in one task group, and tears everything
down in reverse order. The lifespan runs once per worker process (``--workers N``): each builds
its own engine and pool; what they share lives in PostgreSQL (``gateway.shared``).

``app_from_environment`` is the factory uvicorn's worker processes import (settings from
``WARDEN_*`` environment variables, as the parent resolved them).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import anyio
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.approvals.desk import ApprovalDesk
from gateway.approvals.store import ApprovalStore
from gateway.approvals.webhook import Webhook
from gateway.audit.checkpoints import audit_keys
from gateway.audit.rows import StorageLimits
from gateway.audit.writer import AuditWriter
from gateway.auth import BearerKeyMiddleware
from gateway.changes import ToolListChanges
from gateway.config import Settings
from gateway.console import install as install_console
from gateway.db import create_db_engine, migrate
from gateway.edge import BodyCap, HostOriginGuard, allowed_host_names
from gateway.features import Front
from gateway.identities import IdentityStore
from gateway.mcp_front import LogLevels, build_mcp_server, build_session_manager, mcp_asgi
from gateway.metrics import Metrics
from gateway.pins import ToolPins
from gateway.policy import PolicyStore, RateLimiter, RateLimits
from gateway.prompts import Prompts
from gateway.proxy.pipeline import Proxy
from gateway.resources import Resources
from gateway.routes import admin, health
from gateway.routes import approvals as approval_routes
from gateway.routes import audit as audit_routes
from gateway.routes import tools as tool_routes
from gateway.sessions import IdentitySessionManager
from gateway.shared.ratelimits import SharedRateLimiter
from gateway.state import GatewayState
from gateway.subscriptions import Subscriptions
from gateway.upstream.pool import UpstreamPool
from gateway.upstream.spec import load_upstreams

logger = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("warden")
    except PackageNotFoundError:
        return "0+unknown"


class _MCPEndpoint:
    """ASGI endpoint at /mcp that delegates to the app built by the lifespan."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app.state.mcp(scope, receive, send)


def _webhook(settings: Settings) -> Webhook | None:
    if not settings.approval_webhook_url:
        return None
    secret = settings.approval_webhook_secret.get_secret_value() if settings.approval_webhook_secret else None
    return Webhook(settings.approval_webhook_url, secret, settings.approval_webhook_timeout_s)


def _limiter(settings: Settings, engine: Engine) -> RateLimits:
    if settings.ratelimit_shared and engine.dialect.name == "postgresql":
        return SharedRateLimiter(engine)
    return RateLimiter()


def _listener_dsn(engine: Engine) -> str | None:
    """The libpq URL the approval listener connects to; None when the database has no notifications."""
    if engine.dialect.name != "postgresql":
        return None
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def app_from_environment() -> FastAPI:
    """``create_app`` on settings read from the environment (uvicorn's factory in each worker process)."""
    return create_app(Settings())


def _pool(settings: Settings) -> UpstreamPool:
    return UpstreamPool(
        load_upstreams(settings.upstreams_file),
        separator=settings.tool_separator,
        connect_timeout_s=settings.upstream_connect_timeout_s,
        backoff_initial_s=settings.upstream_backoff_initial_s,
        backoff_max_s=settings.upstream_backoff_max_s,
        probe_interval_s=settings.upstream_probe_interval_s,
    )


def _policy_reloaded(metrics: Metrics, changes: ToolListChanges) -> Callable[[bool], None]:
    """Count the reload; a new policy may change what identities see (clients get list_changed)."""

    def reloaded(ok: bool) -> None:
        metrics.policy_reloads.labels("ok" if ok else "error").inc()
        if ok:
            changes.poke()

    return reloaded


def _audit_writer(settings: Settings, engine: Engine) -> AuditWriter:
    signing_key = settings.audit_signing_key.get_secret_value() if settings.audit_signing_key else None
    signer, _ = audit_keys(signing_key, settings.audit_public_key)
    return AuditWriter(
        engine,
        batch_max=settings.audit_batch_max,
        async_outcome=settings.audit_async_outcome,
        signer=signer,
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_interval_s=settings.audit_checkpoint_interval_s,
        limits=StorageLimits(settings.audit_args_max_bytes, settings.audit_denied_args_preview_bytes),
    )


def _features(proxy: Proxy, settings: Settings, changes: ToolListChanges) -> Front:
    """Resources, prompts, completions and subscriptions over the proxy's pipeline and upstreams."""
    resources = Resources(proxy, page_size=settings.list_page_size)
    subscriptions = Subscriptions(resources, timeout_s=settings.upstream_call_timeout_s)
    subscriptions.attach(proxy.pool)
    subscriptions.deliver_to(changes)
    return Front(resources, Prompts(proxy, resources, page_size=settings.list_page_size), subscriptions)


def _mcp_sessions(settings: Settings, proxy: Proxy, changes: ToolListChanges) -> IdentitySessionManager:
    """The MCP server over the proxy, and its session manager; list_changed sees what the proxy shows."""
    changes.bind(proxy.visibility.fingerprint)
    server = build_mcp_server(
        proxy,
        _version(),
        changes,
        settings.tools_page_size,
        _features(proxy, settings, changes),
        log_levels=LogLevels(settings.mcp_max_sessions),
    )
    return build_session_manager(server, settings, changes)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_db_engine(settings.database_url)
        migrate(engine)
        metrics = Metrics()
        changes = ToolListChanges(streams_per_identity=settings.mcp_sessions_per_identity)
        policies = PolicyStore(settings.policy_dir, on_reload=_policy_reloaded(metrics, changes))
        pool = _pool(settings)
        audit = _audit_writer(settings, engine)
        pins = ToolPins(
            engine,
            audit,
            trust_first_sight=settings.tool_pins_trust_first_sight,
            poll_s=settings.tool_pins_poll_s,
            on_change=changes.poke,
        )
        pool.review_catalogs_with(pins.review)
        approvals = ApprovalStore(engine)
        identities = IdentityStore(engine, cache_ttl_s=settings.auth_cache_ttl_s)
        desk = ApprovalDesk(
            approvals,
            audit,
            policies,
            ttl_s=settings.approval_ttl_s,
            poll_s=settings.approval_poll_s,
            base_url=settings.public_base_url or f"http://{settings.host}:{settings.port}",
            webhook=_webhook(settings),
            listen_dsn=_listener_dsn(engine),
        )
        limiter = _limiter(settings, engine)
        proxy = Proxy(
            policies=policies,
            pool=pool,
            pins=pins,
            identities=identities,
            audit=audit,
            desk=desk,
            limiter=limiter,
            metrics=metrics,
            call_timeout_s=settings.upstream_call_timeout_s,
            approval_hold_s=settings.approval_hold_s,
        )
        manager = _mcp_sessions(settings, proxy, changes)
        app.state.gateway = GatewayState(
            settings, engine, identities, policies, pool, audit, approvals, metrics, proxy, desk, pins
        )
        app.state.mcp = BearerKeyMiddleware(mcp_asgi(manager), identities.authenticate, identities.cached)
        await audit.start()
        await pins.reload()
        try:
            async with anyio.create_task_group() as tg, manager.run():
                pool.start(tg)
                desk.start(tg)
                tg.start_soon(limiter.sweep, settings.ratelimit_sweep_s, name="ratelimit-sweep")
                tg.start_soon(pins.reload_forever, name="tool-pins-reload")
                tg.start_soon(changes.run, name="tools-list-changed")
                if settings.policy_reload:
                    tg.start_soon(policies.watch, name="policy-watch")
                if not await pool.wait_ready(settings.upstream_connect_timeout_s):
                    logger.warning("not every upstream is ready yet; see /readyz")
                pool.refuse_collisions()  # a public name two upstreams claim refuses the start (gateway/names.py)
                yield
                tg.cancel_scope.cancel()
        finally:
            await audit.stop()
            engine.dispose()

    docs = settings.api_docs
    app = FastAPI(
        title="Warden gateway",
        version=_version(),
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    caps = {"/mcp": settings.max_body_bytes, **settings.route_body_limits}
    app.add_middleware(
        BodyCap, default_cap=settings.max_api_body_bytes, caps=caps, drain_limit=settings.oversized_body_drain_bytes
    )
    app.add_middleware(HostOriginGuard, hosts=allowed_host_names(settings), origins=settings.allowed_origins)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(tool_routes.router)
    app.include_router(approval_routes.router)
    app.include_router(audit_routes.router)
    install_console(app)
    # First: every MCP request is matched at once instead of after each API and console router.
    app.router.routes.insert(0, Route("/mcp", endpoint=_MCPEndpoint(app), methods=["GET", "POST", "DELETE"]))
    return app
