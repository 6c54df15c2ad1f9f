"""The call pipeline: what happens to one `tools/call` between the MCP front and an upstream.

Order, for every call: resolve the public name to a catalog entry whose definition is
accepted (``pins``) → decide (pure policy, then rate limits: ``decision``) → validate
arguments against the tool's inputSchema → commit the decision to the audit log
(``record``) → hold for approval (``hold``), or forward (``forward``) → commit the outcome
→ answer.

A tool the identity cannot see (no such tool, definition not accepted, or not granted:
``default-deny``) gets one and the same answer, ``answers.unknown_tool``; the audit log
keeps which it was. Every text an agent gets comes from ``answers``, never from an
exception.

One call travels as one ``CallContext`` (``context``), built once when the call arrives,
and every ending goes through ``CallRecord.finish``: a call that was never committed gets
one event (its decision with the final outcome), a committed one gets an outcome event.

A call carries its ``CallRelay`` (``gateway.relay``) when the client can take progress,
log messages or server requests; ``forward`` binds it and hands it upstream. A call the
client cancels (2025 ``notifications/cancelled``, 2026-07-28 closing the response) is
cancelled upstream by the SDK and audited with outcome ``cancelled``.

The same pipeline carries resource reads, prompt gets and completions (``ToolCall.kind``):
``gateway.resources`` and ``gateway.prompts`` resolve and decide them (``context``), answer a
deny themselves, and hand the rest to ``admit`` (approve → hold, allow → commit → forward
through the context's ``send`` → finish). Tool results have their resource URIs rewritten
to public ones (``gateway.uris``).

Owns: ``Proxy``, which assembles the stages and runs them in that order; tools/list
(``list_tools``, what ``visibility`` shows, audited). This module orchestrates; it does not
parse JSON-RPC (mcp_front does), decide (policy.engine does), store (audit/approvals do) or
speak MCP upstream (``gateway.upstream`` does).

Fail closed: if the policy cannot be evaluated, the shared rate-limit counters cannot
answer, the audit log cannot commit the decision, or the approval store cannot be read or
written, the call is denied, never forwarded, and `warden_fail_closed_total{reason}` counts it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway import answers
from gateway.approvals.desk import ApprovalDesk
from gateway.arguments import ArgumentValidators
from gateway.audit.writer import AuditWriter
from gateway.identities import IdentityStore
from gateway.metrics import Metrics
from gateway.pins import ToolPins
from gateway.policy import PolicyStore, RateLimits
from gateway.proxy.context import CallContext, JsonRpcRefusal, Sender, new_id
from gateway.proxy.decision import Decider
from gateway.proxy.forward import Forwarder
from gateway.proxy.hold import ApprovalHold
from gateway.proxy.record import CallRecord
from gateway.proxy.visibility import Visibility
from gateway.relay import CallRelay, StaleState
from gateway.server_requests import ServerRequestGuard
from gateway.types import Caller, ClientFeatures, Outcome, ToolCall
from gateway.upstream.catalog import CatalogEntry
from gateway.upstream.pool import UpstreamPool

logger = logging.getLogger(__name__)


class Proxy:
    def __init__(
        self,
        *,
        policies: PolicyStore,
        pool: UpstreamPool,
        pins: ToolPins,
        identities: IdentityStore,
        audit: AuditWriter,
        desk: ApprovalDesk,
        limiter: RateLimits,
        metrics: Metrics,
        call_timeout_s: float,
        approval_hold_s: float,
    ) -> None:
        self.policies = policies
        self.pool = pool
        self.pins = pins
        self.identities = identities
        self.audit = audit
        self.desk = desk
        self.limiter = limiter
        self.metrics = metrics
        self.call_timeout_s = call_timeout_s
        self.approval_hold_s = approval_hold_s
        self.validators = ArgumentValidators(pool)
        self.guard = ServerRequestGuard(policies=policies, audit=audit, metrics=metrics)
        self.visibility = Visibility(policies=policies, pool=pool, pins=pins)
        self.record = CallRecord(audit=audit, metrics=metrics, policies=policies)
        self.decider = Decider(policies=policies, limiter=limiter, metrics=metrics)
        self.forwarder = Forwarder(guard=self.guard, record=self.record, metrics=metrics, call_timeout_s=call_timeout_s)
        self.approvals = ApprovalHold(
            desk=desk,
            identities=identities,
            policies=policies,
            pool=pool,
            pins=pins,
            record=self.record,
            forward=self.forwarder.forward,
            approval_hold_s=approval_hold_s,
        )

    # ---- tools/list -------------------------------------------------------------------------

    async def list_tools(self, identity_name: str) -> list[types.Tool]:
        """The catalog an identity may call: upstream tools under their public names, filtered by its grants."""
        visible = [
            entry.tool.model_copy(update={"name": entry.public_name})
            for entry in self.visibility.visible(identity_name)
        ]
        await self.record.listing(identity_name, len(visible))
        return visible

    # ---- tools/call -------------------------------------------------------------------------

    async def call(
        self,
        caller: Caller,
        public_name: str,
        arguments: Mapping[str, Any],
        request_ref: str | None = None,
        client: ClientFeatures = ClientFeatures(),
        *,
        relay: CallRelay | None = None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        """One tools/call, answered in the agent's terms whatever happens inside."""
        try:
            if relay is not None and relay.returned_state is not None:
                try:
                    self.forwarder.restore(relay, caller, public_name)
                except StaleState:
                    return answers.stale_input_state(public_name)
            return await self._call(caller, public_name, arguments, request_ref, client, relay=relay)
        except JsonRpcRefusal:
            raise
        except MCPError:  # an upstream's JSON-RPC error, relayed as one (answers.relayed_error)
            raise
        except Exception:  # boundary: an unexpected failure never reaches the agent as exception text
            logger.exception("call of %s by %s failed inside the gateway", public_name, caller.name)
            return self.record.fail_closed("internal", "the gateway could not complete the call")

    async def _call(
        self,
        caller: Caller,
        public_name: str,
        arguments: Mapping[str, Any],
        request_ref: str | None,
        client: ClientFeatures,
        *,
        relay: CallRelay | None = None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        started = time.perf_counter()
        entry = self.pool.entry(public_name)
        if entry is None or not self.pins.admits(entry):
            where = self.pool.split(public_name)
            await self.record.unknown(
                caller,
                public_name,
                arguments,
                where=where,
                listed=entry is not None,
                request_ref=request_ref,
                started=started,
            )
            return answers.unknown_tool(public_name)
        ctx = await self._context(caller, entry, arguments, request_ref=request_ref, client=client, started=started)
        ctx.relay = relay
        decision = ctx.decision
        if decision.effect == "deny":
            await self.record.finish(ctx, "denied")
            return answers.denied(public_name, decision)
        problem = self.validators.problem(entry, ctx.call.arguments)
        if problem is not None:
            await self.record.finish(ctx, "invalid_arguments", error=problem)
            return answers.tool_error(f"invalid arguments for {public_name}: {problem}")
        return await self.admit(ctx)

    async def _context(
        self,
        caller: Caller,
        entry: CatalogEntry,
        arguments: Mapping[str, Any],
        *,
        request_ref: str | None,
        client: ClientFeatures,
        started: float,
    ) -> CallContext:
        """Decide a tools/call and build the one context it travels with."""
        call = ToolCall(
            entry.public_name, entry.server, entry.tool.name, dict(arguments), new_id(), entry.definition_hash
        )
        return await self.decider.decided(
            caller, call, entry, None, method="tools/call", request_ref=request_ref, client=client, started=started
        )

    # ---- resource reads, prompt gets, completions (gateway.forwarding) ------------------------

    async def context(
        self,
        caller: Caller,
        call: ToolCall,
        send: Sender,
        *,
        method: str,
        request_ref: str | None = None,
        client: ClientFeatures = ClientFeatures(),
    ) -> CallContext:
        """Decide a resource read, prompt get or completion and build the context it travels with."""
        return await self.decider.decided(
            caller, call, None, send, method=method, request_ref=request_ref, client=client, started=time.perf_counter()
        )

    async def admit(self, ctx: CallContext) -> Any:
        """A decided call that policy does not deny: hold it for approval, or commit and forward it."""
        if ctx.decision.effect == "approve":
            return await self.approvals.handle(ctx)
        if not await self.record.commit(ctx):
            return self.record.fail_closed("audit", "the audit log could not record the decision")
        return await self.forwarder.forward(ctx)

    async def end(self, ctx: CallContext, outcome: Outcome, *, error: str = "") -> None:
        """Record how a call ended that never reached ``admit`` (a deny)."""
        await self.record.finish(ctx, outcome, error=error)
