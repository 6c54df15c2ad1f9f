"""The call pipeline: what happens to one `tools/call` between the MCP front and an upstream.

Order, for every call: resolve the public name → decide (pure policy, then rate limits)
→ validate arguments against the tool's inputSchema → commit the decision to the audit
log → hold for approval, or forward → commit the outcome → answer.

A call policy holds for approval (effect ``approve``) runs at once if an approved
approval covers it (``ApprovalDesk.admit``: an exact one is consumed, so it runs once).
Otherwise it is recorded as pending (or joins the pending approval of the identical
call) and waits up to ``approval_hold_s`` for the decision: approved → forwarded,
denied or expired → a tool error naming the approval and the reason, still undecided →
"pending approval <id>". A client that takes URL elicitations (2026-07-28) is instead
answered at once with an input-required result pointing at the approval; its retries
then wait like any other.

This module orchestrates; it does not parse JSON-RPC (mcp_front does), decide
(policy.engine does), store (audit/approvals do) or speak MCP upstream (upstream does).

Fail closed: if the policy cannot be evaluated, the audit log cannot commit the
decision, or the approval store cannot be read or written, the call is
denied, never forwarded, and `warden_fail_closed_total{reason}` counts it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from jsonschema import validators
from jsonschema.exceptions import SchemaError

from gateway.approvals.desk import ApprovalDesk
from gateway.audit.writer import AuditWriter
from gateway.metrics import Metrics
from gateway.models import Approval
from gateway.policy import PolicyStore, RateLimiter, decide
from gateway.redact import redact
from gateway.risk import risk_label
from gateway.types import AuditEvent, ClientFeatures, Decision, Identity, Outcome, ToolCall
from gateway.upstream import Upstream, UpstreamPool, UpstreamTimeout, UpstreamUnavailable

logger = logging.getLogger(__name__)

APPROVAL_INPUT_KEY = "approval"
"""Key of the approval's URL elicitation in an input-required result (and of the client's answer)."""


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
        desk: ApprovalDesk,
        limiter: RateLimiter,
        metrics: Metrics,
        call_timeout_s: float,
        approval_hold_s: float,
    ) -> None:
        self.policies = policies
        self.pool = pool
        self.audit = audit
        self.desk = desk
        self.limiter = limiter
        self.metrics = metrics
        self.call_timeout_s = call_timeout_s
        self.approval_hold_s = approval_hold_s
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
        self,
        identity_name: str,
        public_name: str,
        arguments: Mapping[str, Any],
        request_ref: str | None = None,
        client: ClientFeatures = ClientFeatures(),
    ) -> types.CallToolResult | types.InputRequiredResult:
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
            risk=risk_label(upstream.tools.get(tool)),
        )

        if decision.effect == "deny":
            await self._record_final(base, "denied", started, redact_fields)
            return tool_error(f"denied by policy (rule {', '.join(decision.rule_ids)}): {decision.reason}")

        problem = self._validate(public_name, call.arguments)
        if problem is not None:
            await self._record_final(base, "invalid_arguments", started, redact_fields, error=problem)
            return tool_error(f"invalid arguments for {public_name}: {problem}")

        if decision.effect == "approve":
            return await self._approval(base, upstream, call, identity, decision, started, redact_fields, client)

        try:
            await self.audit.record(base, redact_fields)
        except Exception as exc:  # boundary: any audit failure denies the call
            return self._fail_closed("audit", f"the audit log could not record the decision ({exc})")
        return await self._forward(base, upstream, call, started, redact_fields)

    async def _forward(
        self, base: AuditEvent, upstream: Upstream, call: ToolCall, started: float, redact_fields: frozenset[str]
    ) -> types.CallToolResult:
        """Send a call whose decision is committed upstream; commit its outcome; answer."""
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

    async def _approval(
        self,
        base: AuditEvent,
        upstream: Upstream,
        call: ToolCall,
        identity: Identity,
        decision: Decision,
        started: float,
        redact_fields: frozenset[str],
        client: ClientFeatures,
    ) -> types.CallToolResult | types.InputRequiredResult:
        """A call policy holds for a person: run it on a granted approval, or hold it for one."""
        try:
            granted = await self.desk.admit(identity.name, call, decision)
            if granted is None:
                redacted = redact(call.arguments, redact_fields)
                approval, created = await self.desk.request(call, identity, decision, redacted)
        except Exception as exc:  # boundary: an approval store failure denies
            logger.exception("approval store failed for call %s", call.call_id)
            denied = _replace(base, effect="deny", rule_ids=("fail-closed",))
            await self._record_final(denied, "denied", started, redact_fields, error=f"approval store: {exc}")
            return self._fail_closed("approvals", "the approval store could not be read or written")
        if granted is not None:
            admitted = _replace(base, approval_id=granted.id, reason=f"{base.reason}; {_approved_by(granted)}")
            try:
                await self.audit.record(admitted, redact_fields)
            except Exception as exc:  # boundary: any audit failure denies the call
                return self._fail_closed("audit", f"the audit log could not record the decision ({exc})")
            return await self._forward(admitted, upstream, call, started, redact_fields)

        held = _replace(base, approval_id=approval.id)
        try:
            await self.audit.record(held, redact_fields)
        except Exception:  # boundary: a hold that cannot be audited is refused
            logger.exception("audit: held call %s could not be recorded", call.call_id)
            return self._fail_closed("audit", "the audit log could not record the approval request")
        if created:
            self.desk.announce(approval)
        if client.url_elicitation and client.resumes != approval.id:
            await self._record_outcome(held, "approval_required", started, redact_fields, "approval link sent")
            return self._elicit(approval, decision)

        try:
            settled = await self.desk.hold(approval.id, self.approval_hold_s)
            runs = settled.state == "approved" and await self.desk.use(settled)
        except Exception as exc:  # boundary: the store failing while held denies
            logger.exception("approval store failed while holding call %s", call.call_id)
            await self._record_outcome(_replace(held, effect="deny"), "denied", started, redact_fields, str(exc))
            return self._fail_closed("approvals", "the approval store could not be read or written")
        if runs:
            return await self._forward(
                _replace(held, reason=f"{held.reason}; {_approved_by(settled)}"), upstream, call, started, redact_fields
            )
        if settled.state == "pending":
            await self._record_outcome(held, "approval_required", started, redact_fields)
            if client.url_elicitation:  # the person has the link; the client retries after a short pause
                return types.InputRequiredResult(request_state=approval.id)
            return tool_error(_pending_message(settled, decision, self.desk.link(approval.id)))
        message = _refusal_message(settled)
        await self._record_outcome(_replace(held, effect="deny"), "denied", started, redact_fields, message)
        return tool_error(message)

    def _elicit(self, approval: Approval, decision: Decision) -> types.InputRequiredResult:
        """Point the person behind the client at the approval (URL-mode elicitation, 2026-07-28)."""
        roles = ", ".join(decision.approver_roles)
        message = f"{approval.tool_name} needs approval by a person with role {roles}: {decision.reason}"
        params = types.ElicitRequestURLParams(message=message, url=self.desk.link(approval.id))
        return types.InputRequiredResult(
            input_requests={APPROVAL_INPUT_KEY: types.ElicitRequest(params=params)}, request_state=approval.id
        )

    async def _record_outcome(
        self, event: AuditEvent, outcome: Outcome, started: float, redact_fields: frozenset[str], error: str = ""
    ) -> None:
        """The outcome of a held call that was not forwarded. The answer stands even if this fails."""
        self.metrics.outcomes.labels(outcome).inc()
        self.metrics.call_seconds.observe(_ms(started) / 1000)
        final = _replace(event, phase="outcome", outcome=outcome, error=error, latency_total_ms=_ms(started))
        try:
            await self.audit.record(final, redact_fields)
        except Exception:  # boundary: counted and logged; the call is refused either way
            logger.exception("audit: outcome of held call %s could not be recorded", event.call_id)
            self.metrics.fail_closed.labels("audit_outcome").inc()

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


def _approved_by(approval: Approval) -> str:
    return f"approval {approval.id} approved by {approval.decided_by}: {approval.decided_reason}"


def _pending_message(approval: Approval, decision: Decision, link: str) -> str:
    rules = ", ".join(decision.rule_ids)
    roles = ", ".join(decision.approver_roles)
    return (
        f"pending approval {approval.id}: rule {rules} ({decision.reason}) holds this call until a person "
        f"with role {roles} decides ({link}). Call again with the same arguments once it is approved; "
        "an approved call runs once."
    )


def _refusal_message(approval: Approval) -> str:
    if approval.state == "denied":
        return f"denied: approval {approval.id} was denied by {approval.decided_by}: {approval.decided_reason}"
    if approval.state == "expired":
        return f"denied: approval {approval.id} expired undecided at {approval.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    return (
        f"denied: approval {approval.id} was already used by another call (state {approval.state}); "
        "call again to ask for a new approval"
    )


def _new_id() -> str:
    return uuid.uuid4().hex


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _replace(event: AuditEvent, **changes: Any) -> AuditEvent:
    return dataclasses.replace(event, **changes)
