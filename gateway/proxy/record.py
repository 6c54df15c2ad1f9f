"""The audit record of the call pipeline: every event a call writes, and the fail-closed counter.

Owns: committing a call's decision event before it is held or forwarded (``commit``: False
refuses the call), recording how it ended (``finish``: one event if its decision was never
committed, else an outcome event; with ``audit_async_outcome`` the writer answers outcome
records at once and commits them with the next batch, ``AuditWriter.record_outcome``), the
one event of a call of an unknown or unaccepted tool (``unknown``) and of a tools/list
(``listing``), and answering a call that fails closed (``fail_closed``, counted in
``warden_fail_closed_total{reason}``).

Never: decides, holds or forwards a call, or writes anywhere but through ``AuditWriter``
(``gateway.audit.writer`` is the only writer).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import mcp_types as types

from gateway import answers
from gateway.audit.writer import AuditWriter
from gateway.metrics import Metrics
from gateway.policy import PolicyStore
from gateway.proxy.context import CallContext, elapsed_ms, new_id
from gateway.types import AuditEvent, Caller, Outcome, Phase

logger = logging.getLogger(__name__)


class CallRecord:
    """The pipeline's audit writes and fail-closed answers (see the module docstring)."""

    def __init__(self, *, audit: AuditWriter, metrics: Metrics, policies: PolicyStore) -> None:
        self.audit = audit
        self.metrics = metrics
        self.policies = policies

    async def commit(self, ctx: CallContext) -> bool:
        """Commit the decision event before the call is held or forwarded; False: refuse the call."""
        try:
            await self.audit.record(ctx.event, ctx.redact_fields)
        except Exception:  # boundary: any audit failure denies the call
            logger.exception("audit: decision of call %s could not be recorded", ctx.call.call_id)
            return False
        ctx.committed = True
        return True

    async def finish(self, ctx: CallContext, outcome: Outcome, *, error: str = "", **fields: Any) -> None:
        """Record how the call ended: one event if its decision was never committed, else an outcome event.

        The answer stands even if this fails: a call that ends here was either never forwarded
        or has already run (its decision record exists); the failure is counted and logged.
        """
        self.metrics.outcomes.labels(outcome).inc()
        self.metrics.call_seconds.observe(elapsed_ms(ctx.started) / 1000)
        phase: Phase = "outcome" if ctx.committed else "decision"
        final = dataclasses.replace(
            ctx.event, phase=phase, outcome=outcome, error=error, latency_total_ms=elapsed_ms(ctx.started), **fields
        )
        try:
            if ctx.committed:  # awaited unless the writer answers outcomes asynchronously (audit_async_outcome)
                await self.audit.record_outcome(
                    final, ctx.redact_fields, self.metrics.fail_closed.labels("audit_outcome").inc
                )
            else:
                await self.audit.record(final, ctx.redact_fields)
        except Exception:  # boundary: counted and logged; see above
            logger.exception("audit: call %s (%s) could not be recorded", ctx.call.call_id, outcome)
            self.metrics.fail_closed.labels("audit_outcome" if ctx.committed else "audit").inc()

    async def unknown(
        self,
        caller: Caller,
        public_name: str,
        arguments: Mapping[str, Any],
        *,
        where: tuple[str, str],
        listed: bool,
        request_ref: str | None,
        started: float,
    ) -> None:
        """Audit a call of a tool that does not exist, or (``listed``) whose definition is not accepted
        (pinning); ``where`` is its (server, tool) as far as the name tells."""
        server, tool = where
        rule, reason = ("tool-pin", "tool definition not accepted by an operator") if listed else ("unknown-tool", "")
        self.metrics.decisions.labels("deny").inc()
        self.metrics.outcomes.labels("denied").inc()
        event = AuditEvent(
            call_id=new_id(),
            phase="decision",
            method="tools/call",
            identity=caller.name,
            server=server[:128],
            tool=tool[:256],
            arguments=dict(arguments),
            effect="deny",
            rule_ids=(rule,),
            reason=reason or "no such tool",
            outcome="denied",
            request_ref=request_ref,
            latency_total_ms=elapsed_ms(started),
        )
        try:
            await self.audit.record(event, self.policies.current.redact_fields(public_name))
        except Exception:  # boundary: the call is refused either way; counted and logged
            logger.exception("audit: unknown-tool call %s could not be recorded", event.call_id)
            self.metrics.fail_closed.labels("audit").inc()

    async def listing(self, identity_name: str, visible: int) -> None:
        """The one event of a tools/list: how many tools the identity was shown."""
        await self.audit.record(
            AuditEvent(
                call_id=new_id(),
                phase="decision",
                method="tools/list",
                identity=identity_name,
                effect="allow",
                reason=f"{visible} tools visible",
                outcome="ok",
            )
        )

    def fail_closed(self, reason: str, message: str) -> types.CallToolResult:
        self.metrics.fail_closed.labels(reason).inc()
        return answers.tool_error(answers.fail_closed(message))
