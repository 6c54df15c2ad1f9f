"""What the lifespan builds once and the routes share: one value, handed out through deps.py."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from gateway.approvals.desk import ApprovalDesk
from gateway.approvals.store import ApprovalStore
from gateway.audit.writer import AuditWriter
from gateway.config import Settings
from gateway.identities import IdentityStore
from gateway.metrics import Metrics
from gateway.pins import ToolPins
from gateway.policy import PolicyStore
from gateway.proxy.pipeline import Proxy
from gateway.upstream.pool import UpstreamPool


@dataclass(frozen=True, slots=True)
class GatewayState:
    settings: Settings
    engine: Engine
    identities: IdentityStore
    policies: PolicyStore
    pool: UpstreamPool
    audit: AuditWriter
    approvals: ApprovalStore
    metrics: Metrics
    proxy: Proxy
    desk: ApprovalDesk
    pins: ToolPins
