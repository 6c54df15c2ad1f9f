"""Deciding one call: pure policy, then rate limits, into the context the call travels with.

Owns: ``Decider.decided``, which decides a call (``policy.engine.decide``, then
``RateLimits.admit`` for a call policy does not deny), times the decision, counts it, and
builds the ``CallContext`` with its decision event (the risk label of a tool's definition
included). Fail closed: a policy that cannot be evaluated or shared rate-limit counters
that cannot answer give a ``fail-closed`` deny, counted in ``warden_fail_closed_total``.

Never: records, holds or forwards the call (the pipeline does, after this), or lets an
exception here allow anything.
"""

from __future__ import annotations

import logging
import time

from gateway.metrics import Metrics
from gateway.policy import PolicyStore, RateLimits, RateLimitStoreError, decide
from gateway.proxy.context import CallContext, Sender, elapsed_ms
from gateway.risk import risk_label
from gateway.types import AuditEvent, Caller, ClientFeatures, Decision, Identity, ToolCall
from gateway.upstream.catalog import CatalogEntry

logger = logging.getLogger(__name__)


class Decider:
    """Policy and rate limits for one call (see the module docstring)."""

    def __init__(self, *, policies: PolicyStore, limiter: RateLimits, metrics: Metrics) -> None:
        self.policies = policies
        self.limiter = limiter
        self.metrics = metrics

    async def decided(
        self,
        caller: Caller,
        call: ToolCall,
        entry: CatalogEntry | None,
        send: Sender | None,
        *,
        method: str,
        request_ref: str | None,
        client: ClientFeatures,
        started: float,
    ) -> CallContext:
        """Decide ``call`` (policy, then rate limits) and build its context with the decision event."""
        policy_started = time.perf_counter()
        decision, identity, redact_fields = await self._decide(caller.name, call)
        policy_ms = elapsed_ms(policy_started)
        self.metrics.policy_seconds.observe(policy_ms / 1000)
        self.metrics.decisions.labels(decision.effect).inc()
        event = AuditEvent(
            call_id=call.call_id,
            phase="decision",
            method=method,
            identity=identity.name,
            server=call.server,
            tool=call.tool,
            arguments=call.arguments,
            args_hash=call.args_hash,
            effect=decision.effect,
            rule_ids=decision.rule_ids,
            reason=decision.reason,
            latency_policy_ms=policy_ms,
            request_ref=request_ref,
            risk=risk_label(entry.tool) if entry is not None else "",
        )
        return CallContext(call, entry, caller, identity, decision, redact_fields, started, client, event, send=send)

    async def _decide(self, identity_name: str, call: ToolCall) -> tuple[Decision, Identity, frozenset[str]]:
        """Policy, then rate limits. Any exception here becomes a fail-closed deny."""
        try:
            policy = self.policies.current
            identity = Identity(identity_name, policy.roles_of(identity_name))
            decision = decide(policy, call, identity)
            if decision.effect != "deny":
                limited = await self.limiter.admit(policy, identity, call, time.monotonic(), decision=decision)
                if limited is not None:
                    decision = limited
            return decision, identity, policy.redact_fields(call.name, kind=call.kind)
        except Exception as exc:  # boundary: policy failure must deny, never allow
            logger.exception("policy evaluation failed for %s", call.name)
            self.metrics.fail_closed.labels("ratelimit" if isinstance(exc, RateLimitStoreError) else "policy").inc()
            reason = f"policy could not be evaluated ({type(exc).__name__}); failing closed"
            return Decision("deny", ("fail-closed",), reason), Identity(identity_name), frozenset()
