"""The call pipeline: what happens to one `tools/call` between the MCP front and an upstream.

Order, for every call: resolve the public name → decide (pure policy, then rate limits)
→ validate arguments against the tool's inputSchema → commit the decision to the audit
log → hold for approval, or forward → commit the outcome → answer.

This module orchestrates; it does not parse JSON-RPC (mcp_front does), decide
(policy.engine does), store (audit/approvals do) or speak MCP upstream (upstream does).

Fail closed: if the policy cannot be evaluated, the audit log cannot commit the
decision, or the approval store cannot record a pending approval, the call is
denied, never forwarded, and `warden_fail_closed_total{reason}` counts it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

import anyio
import mcp_types as types
from jsonschema import validators
from jsonschema.exceptions import SchemaError

from gateway.approvals import ApprovalStore
from gateway.audit import AuditWriter
from gateway.metrics import Metrics
from gateway.policy import PolicyStore, RateLimiter, decide
from gateway.redact import redact
from gateway.types import AuditEvent, Decision, Identity, Outcome, ToolCall
from gateway.upstream import UpstreamPool, UpstreamTimeout, UpstreamUnavailable

logger = logging.getLogger(__name__)


def tool_error(message: str) -> types.CallToolResult:
    """An MCP tool error result: the agent (and its model) reads `message`."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


class Proxy:
    def __init__(
        self,
        *,
        policies: PolicyStore,
        pool: UpstreamPool,
        audit: AuditWriter,
        approvals: ApprovalStore,
        limiter: RateLimiter,
        metrics: Metrics,
        call_timeout_s: float,
        approval_ttl_s: float,
    ) -> None:
        self.policies = policies
        self.pool = pool
        self.audit = audit
        self.approvals = approvals
        self.limiter = limiter
        self.metrics = metrics
        self.call_timeout_s = call_timeout_s
        self.approval_ttl_s = approval_ttl_s
        self._validators: dict[tuple[str, int], Any] = {}

    def identity(self, name: str) -> Identity:
        return Identity(name=name, roles=self.policies.current.roles_of(name))

    # ---- tools/list -------------------------------------------------------------------------

    async def list_tools(self, identity_name: str) -> list[types.Tool]:
        """The catalog an identity may call: namespaced upstream tools filtered by its grants."""
        policy = self.policies.current
        identity = Identity(identity_name, policy.roles_of(identity_name))
        visible = [
            entry.tool.model_copy(update={"name": entry.public_name})
            for entry in self.pool.catalog()
            if policy.is_granted(identity, entry.public_name)
        ]
        await self.audit.record(
            AuditEvent(
                call_id=_new_id(),
                phase="decision",
                method="tools/list",
                identity=identity_name,
                effect="allow",
                reason=f"{len(visible)} tools visible",
                outcome="ok",
            )
        )
        return visible

    def input_schema(self, public_name: str) -> Mapping[str, Any] | None:
        return self.pool.input_schema(public_name)

    # ---- tools/call -------------------------------------------------------------------------

    async def call(
        self, identity_name: str, public_name: str, arguments: Mapping[str, Any], request_ref: str | None = None
    ) -> types.CallToolResult:
        started = time.perf_counter()
        resolved = self.pool.resolve(public_name)
        if resolved is None or (resolved[0].tools and resolved[1] not in resolved[0].tools):
            return tool_error(f"unknown tool: {public_name!r}. Call tools/list to see the tools you may call.")
        upstream, tool = resolved
        call = ToolCall(public_name, upstream.name, tool, dict(arguments), _new_id())

        policy_started = time.perf_counter()
        decision, identity, redact_fields = self._decide(identity_name, call)
        policy_ms = _ms(policy_started)
        self.metrics.policy_seconds.observe(policy_ms / 1000)
        self.metrics.decisions.labels(decision.effect).inc()

        base = AuditEvent(
            call_id=call.call_id,
            phase="decision",
            method="tools/call",
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
        )

        if decision.effect == "deny":
            await self._record_final(base, "denied", started, redact_fields)
            return tool_error(f"denied by policy (rule {', '.join(decision.rule_ids)}): {decision.reason}")

        problem = self._validate(public_name, call.arguments)
        if problem is not None:
            await self._record_final(base, "invalid_arguments", started, redact_fields, error=problem)
            return tool_error(f"invalid arguments for {public_name}: {problem}")

        if decision.effect == "approve":
            return await self._hold_for_approval(base, call, identity, decision, started, redact_fields)

        try:
            await self.audit.record(base, redact_fields)
        except Exception as exc:  # boundary: any audit failure denies the call
            return self._fail_closed("audit", f"the audit log could not record the decision ({exc})")

        upstream_started = time.perf_counter()
        outcome: Outcome
        error = ""
        try:
            result = await upstream.call(call.tool, call.arguments, self.call_timeout_s)
            outcome = "tool_error" if result.is_error else "ok"
        except UpstreamTimeout as exc:
            outcome, error = "timeout", str(exc)
            result = tool_error(f"upstream timeout: {exc}")
        except UpstreamUnavailable as exc:
            outcome, error = "upstream_error", str(exc)
            result = tool_error(f"upstream error: {exc}")
        upstream_ms = _ms(upstream_started)
        self.metrics.upstream_seconds.labels(call.server).observe(upstream_ms / 1000)

        outcome_event = _replace(
            base,
            phase="outcome",
            outcome=outcome,
            error=error,
            latency_upstream_ms=upstream_ms,
            latency_total_ms=_ms(started),
        )
        try:
            await self.audit.record(outcome_event, redact_fields)
        except Exception:  # boundary: the call already ran; its decision record exists. Count and log.
            logger.exception("audit: outcome of call %s could not be recorded", call.call_id)
            self.metrics.fail_closed.labels("audit_outcome").inc()
        self.metrics.outcomes.labels(outcome).inc()
        self.metrics.call_seconds.observe(_ms(started) / 1000)
        return result

    def _decide(self, identity_name: str, call: ToolCall) -> tuple[Decision, Identity, frozenset[str]]:
        """Policy, then rate limits. Any exception here becomes a fail-closed deny."""
        try:
            policy = self.policies.current
            identity = Identity(identity_name, policy.roles_of(identity_name))
            decision = decide(policy, call, identity)
            if decision.effect != "deny":
                limited = self.limiter.check(policy, identity, call, now=time.monotonic(), decision=decision)
                if limited is not None:
                    decision = limited
            return decision, identity, policy.redact_fields(call.name)
        except Exception as exc:  # boundary: policy failure must deny, never allow
            logger.exception("policy evaluation failed for %s", call.name)
            self.metrics.fail_closed.labels("policy").inc()
            reason = f"policy could not be evaluated ({type(exc).__name__}); failing closed"
            return Decision("deny", ("fail-closed",), reason), Identity(identity_name), frozenset()

    def _validate(self, public_name: str, arguments: Mapping[str, Any]) -> str | None:
        schema = self.pool.input_schema(public_name)
        if not schema:
            return None
        key = (public_name, id(schema))
        validator = self._validators.get(key)
        if validator is None:
            cls = validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except SchemaError:
                logger.warning("tool %s has an invalid inputSchema; arguments are not validated", public_name)
                return None
            validator = self._validators[key] = cls(schema)
        errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: list(e.path))
        if not errors:
            return None
        parts = [f"{'/'.join(map(str, e.path)) or '(arguments)'}: {e.message}" for e in errors[:3]]
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return "; ".join(parts) + more

    async def _hold_for_approval(
        self,
        base: AuditEvent,
        call: ToolCall,
        identity: Identity,
        decision: Decision,
        started: float,
        redact_fields: frozenset[str],
    ) -> types.CallToolResult:
        try:
            approval = await anyio.to_thread.run_sync(
                lambda: self.approvals.create(
                    call, identity, decision, redact(call.arguments, redact_fields), self.approval_ttl_s
                )
            )
        except Exception as exc:  # boundary: approval storage failure denies
            logger.exception("approval store failed for call %s", call.call_id)
            denied = _replace(base, effect="deny", rule_ids=("fail-closed",))
            await self._record_final(denied, "denied", started, redact_fields, error=f"approval store: {exc}")
            return self._fail_closed("approvals", "the approval store could not record the request")
        recorded = await self._record_final(
            _replace(base, approval_id=approval.id), "approval_required", started, redact_fields
        )
        if not recorded:
            return self._fail_closed("audit", "the audit log could not record the approval request")
        rules = ", ".join(decision.rule_ids)
        return tool_error(f"approval required: {approval.id} (rule {rules}: {decision.reason})")

    async def _record_final(
        self, event: AuditEvent, outcome: Outcome, started: float, redact_fields: frozenset[str], error: str = ""
    ) -> bool:
        """A call that is not forwarded gets one event: its decision with the final outcome.

        Returns False when the audit log could not commit it (the caller then refuses the call).
        """
        self.metrics.outcomes.labels(outcome).inc()
        self.metrics.call_seconds.observe(_ms(started) / 1000)
        try:
            await self.audit.record(
                _replace(event, outcome=outcome, error=error, latency_total_ms=_ms(started)), redact_fields
            )
        except Exception:  # boundary: counted and logged; the call is refused either way
            logger.exception("audit: call %s (%s) could not be recorded", event.call_id, outcome)
            self.metrics.fail_closed.labels("audit").inc()
            return False
        return True

    def _fail_closed(self, reason: str, message: str) -> types.CallToolResult:
        self.metrics.fail_closed.labels(reason).inc()
        return tool_error(f"call denied: {message}. The gateway fails closed.")


def _new_id() -> str:
    return uuid.uuid4().hex


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _replace(event: AuditEvent, **changes: Any) -> AuditEvent:
    return dataclasses.replace(event, **changes)
