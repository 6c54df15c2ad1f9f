"""The call pipeline: what happens to one `tools/call` between the MCP front and an upstream.

Order, for every call: resolve the public name to a catalog entry whose definition is
accepted (``pins``) → decide (pure policy, then rate limits) → validate arguments against
the tool's inputSchema → commit the decision to the audit log → hold for approval, or
forward → commit the outcome → answer.

A tool the identity cannot see (no such tool, definition not accepted, or not granted:
``default-deny``) gets one and the same answer, ``answers.unknown_tool``; the audit log
keeps which it was. Every text an agent gets comes from ``answers``, never from an
exception.

A call policy holds for approval (effect ``approve``) runs at once if an approved
approval covers it (``ApprovalDesk.admit``: an exact one is consumed, so it runs once).
Otherwise it is recorded as pending (or joins the pending approval of the identical
call) and waits up to ``approval_hold_s`` for the decision: approved → forwarded,
denied or expired → a tool error naming the approval and the reason, still undecided →
"pending approval <id>". A client that takes URL elicitations (2026-07-28) is instead
answered at once with an input-required result pointing at the approval; its retries
then wait like any other. A held call released by its approval is checked again before
it is forwarded (``_recheck``): the caller's key must still be active, the CURRENT policy
must not deny it, and the tool's listed definition must be the accepted one the approval
was requested for (approvals bind ``definition_hash``); otherwise it is refused, audited
as denied by ``revoked-key``, ``tool-pin`` (``prompt-changed`` for a prompt get whose
listed prompt changed) or the denying rule.

One call travels as one ``CallContext``, built once when the call arrives (identity,
call, catalog entry, decision, redaction fields, start time, request ref), and every
ending goes through ``_finish``: a call that was never committed gets one event (its
decision with the final outcome), a committed one gets an outcome event.

A call carries its ``CallRelay`` (``gateway.relay``) when the client can take progress,
log messages or server requests: ``_forward`` binds the relay's gate (policy + audit of
the upstream's server requests, ``gateway.server_requests``) and hands it upstream. A
2026-07-28 upstream's input-required result is relayed to a 2026-07-28 client under
``upstream:``-prefixed keys (approval keys stay apart) with a requestState sealed to the
identity and tool; its answers go back upstream on the client's retry. A call the client
cancels (2025 ``notifications/cancelled``, 2026-07-28 closing the response) is cancelled
upstream by the SDK and audited with outcome ``cancelled``.

The same pipeline carries resource reads, prompt gets and completions (``ToolCall.kind``):
``gateway.resources`` and ``gateway.prompts`` resolve and decide them (``context``), answer a
deny themselves, and hand the rest to ``admit`` (approve → hold, allow → commit → forward
through the context's ``send`` → finish). Tool results have their resource URIs rewritten
to public ones (``gateway.uris``).

This module orchestrates; it does not parse JSON-RPC (mcp_front does), decide
(policy.engine does), store (audit/approvals do) or speak MCP upstream (upstream does).

With ``audit_async_outcome`` (off by default) the writer answers outcome records of committed
calls at once and commits them with the next batch (``AuditWriter.record_outcome``).

Fail closed: if the policy cannot be evaluated, the shared rate-limit counters cannot
answer, the audit log cannot commit the decision, or the approval store cannot be read or
written, the call is denied, never forwarded, and `warden_fail_closed_total{reason}` counts it.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from anyio import to_thread
from mcp.shared.exceptions import MCPError

from gateway import answers, uris
from gateway import meta as gateway_meta
from gateway.approvals.desk import ApprovalDesk
from gateway.arguments import ArgumentValidators
from gateway.audit.writer import AuditWriter
from gateway.identities import IdentityStore
from gateway.metrics import Metrics
from gateway.models import Approval
from gateway.pins import ToolPins
from gateway.policy import PolicyStore, RateLimits, RateLimitStoreError, decide
from gateway.redact import redact
from gateway.relay import CallRelay, StaleState, open_state, seal_state, to_client_requests
from gateway.risk import risk_label
from gateway.server_requests import ServerRequestGuard
from gateway.types import AuditEvent, Caller, ClientFeatures, Decision, Identity, Outcome, Phase, ToolCall
from gateway.upstream import CatalogEntry, UpstreamPool, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable

Sent = tuple[Any, Outcome, dict[str, Any]]
"""What a non-tool ``send`` gives back: the answer, its outcome, and fields for the outcome event."""
Sender = Callable[[float], Awaitable[Sent]]
"""Forwards a resource read, prompt get or completion upstream, given the call timeout."""

logger = logging.getLogger(__name__)


class JsonRpcRefusal(Exception):
    """A call answered with a JSON-RPC error instead of a result, after its ending was audited."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


APPROVAL_INPUT_KEY = "approval"
"""Key of the approval's URL elicitation in an input-required result (and of the client's answer)."""


@dataclass(slots=True)
class CallContext:
    """One tools/call on its way through the pipeline; built once in ``Proxy.call``."""

    call: ToolCall
    entry: CatalogEntry | None
    """The tool's catalog entry; None for resource reads, prompt gets and completions (they have ``send``)."""
    caller: Caller
    identity: Identity
    decision: Decision
    redact_fields: frozenset[str]
    started: float
    client: ClientFeatures
    event: AuditEvent
    """The call's decision event; later events (held, outcome) are derived from it."""
    committed: bool = False
    """The decision event is in the audit log (so the ending is a separate outcome event)."""
    relay: CallRelay | None = None
    """Where this call's progress, logs and server requests go (None: the client takes none)."""
    send: Sender | None = None
    """How a non-tool call is forwarded (``gateway.resources``, ``gateway.prompts``)."""
    definition: Callable[[], str] | None = None
    """The listed definition hash of a non-tool request NOW (a prompt get's; re-checked on release)."""

    def update(self, **changes: Any) -> None:
        self.event = dataclasses.replace(self.event, **changes)


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
        self._state_secret = secrets.token_bytes(32)
        """Seals the requestState of relayed upstream input rounds (process-local: a restart invalidates them)."""

    # ---- tools/list -------------------------------------------------------------------------

    def visible(self, identity_name: str) -> list[CatalogEntry]:
        """The catalog entries an identity may see and call: accepted definitions it is granted."""
        policy = self.policies.current
        identity = Identity(identity_name, policy.roles_of(identity_name))
        return [
            entry
            for entry in self.pool.catalog()
            if self.pins.admits(entry) and policy.is_granted(identity, entry.public_name)
        ]

    def fingerprint(self, identity_name: str) -> frozenset[tuple[str, str]]:
        """What ``identity_name`` sees, as (public name, definition hash) pairs (list_changed compares these)."""
        return frozenset((entry.public_name, entry.definition_hash) for entry in self.visible(identity_name))

    async def list_tools(self, identity_name: str) -> list[types.Tool]:
        """The catalog an identity may call: upstream tools under their public names, filtered by its grants."""
        visible = [entry.tool.model_copy(update={"name": entry.public_name}) for entry in self.visible(identity_name)]
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

    def input_schema(self, public_name: str, identity_name: str | None) -> Mapping[str, Any] | None:
        """The inputSchema of a tool ``identity_name`` may see (for the SDK's header checks); else None."""
        entry = self._visible(public_name, identity_name) if identity_name is not None else None
        return entry.tool.input_schema if entry is not None else None

    def _visible(self, public_name: str, identity_name: str) -> CatalogEntry | None:
        entry = self.pool.entry(public_name)
        if entry is None or not self.pins.admits(entry):
            return None
        policy = self.policies.current
        return (
            entry if policy.is_granted(Identity(identity_name, policy.roles_of(identity_name)), public_name) else None
        )

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
                    relay.upstream_state = open_state(
                        self._state_secret, caller.name, public_name, relay.returned_state, now=time.time()
                    )
                except StaleState:
                    return answers.stale_input_state(public_name)
            return await self._call(caller, public_name, arguments, request_ref, client, relay=relay)
        except JsonRpcRefusal:
            raise
        except MCPError:  # an upstream's JSON-RPC error, relayed as one (answers.relayed_error)
            raise
        except Exception:  # boundary: an unexpected failure never reaches the agent as exception text
            logger.exception("call of %s by %s failed inside the gateway", public_name, caller.name)
            return self._fail_closed("internal", "the gateway could not complete the call")

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
            await self._record_unknown(
                caller, public_name, arguments, request_ref=request_ref, started=started, entry=entry
            )
            return answers.unknown_tool(public_name)
        ctx = await self._context(caller, entry, arguments, request_ref=request_ref, client=client, started=started)
        ctx.relay = relay
        decision = ctx.decision
        if decision.effect == "deny":
            await self._finish(ctx, "denied")
            return answers.denied(public_name, decision)
        problem = self.validators.problem(entry, ctx.call.arguments)
        if problem is not None:
            await self._finish(ctx, "invalid_arguments", error=problem)
            return answers.tool_error(f"invalid arguments for {public_name}: {problem}")
        if decision.effect == "approve":
            return await self._approval(ctx)
        if not await self._commit(ctx):
            return self._fail_closed("audit", "the audit log could not record the decision")
        return await self._forward(ctx)

    async def _record_unknown(
        self,
        caller: Caller,
        public_name: str,
        arguments: Mapping[str, Any],
        *,
        request_ref: str | None,
        started: float,
        entry: CatalogEntry | None,
    ) -> None:
        """Audit a call of a tool that does not exist, or whose definition is not accepted (pinning)."""
        server, tool = self.pool.split(public_name)
        rule, reason = ("tool-pin", "tool definition not accepted by an operator") if entry else ("unknown-tool", "")
        self.metrics.decisions.labels("deny").inc()
        self.metrics.outcomes.labels("denied").inc()
        event = AuditEvent(
            call_id=_new_id(),
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
            latency_total_ms=_ms(started),
        )
        try:
            await self.audit.record(event, self.policies.current.redact_fields(public_name))
        except Exception:  # boundary: the call is refused either way; counted and logged
            logger.exception("audit: unknown-tool call %s could not be recorded", event.call_id)
            self.metrics.fail_closed.labels("audit").inc()

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
            entry.public_name, entry.server, entry.tool.name, dict(arguments), _new_id(), entry.definition_hash
        )
        return await self._decided(
            caller, call, entry, None, method="tools/call", request_ref=request_ref, client=client, started=started
        )

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
        return await self._decided(
            caller, call, None, send, method=method, request_ref=request_ref, client=client, started=time.perf_counter()
        )

    async def _decided(
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
        policy_ms = _ms(policy_started)
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

    async def admit(self, ctx: CallContext) -> Any:
        """A decided call that policy does not deny: hold it for approval, or commit and forward it."""
        if ctx.decision.effect == "approve":
            return await self._approval(ctx)
        if not await self._commit(ctx):
            return self._fail_closed("audit", "the audit log could not record the decision")
        return await self._forward(ctx)

    async def end(self, ctx: CallContext, outcome: Outcome, *, error: str = "") -> None:
        """Record how a call ended that never reached ``admit`` (a deny)."""
        await self._finish(ctx, outcome, error=error)

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

    async def _forward(self, ctx: CallContext) -> Any:
        """Send a call whose decision is committed upstream; record its outcome; answer."""
        call = ctx.call
        if ctx.send is None and ctx.entry is not None and _requires_task(ctx.entry):
            await self._finish(ctx, "denied", error="execution.taskSupport required: tasks are not supported")
            raise JsonRpcRefusal(types.INVALID_REQUEST, answers.task_required(call.name))
        relay = ctx.relay
        if relay is not None:
            relay.gate = self.guard.bind(ctx.identity.name, call.call_id, ctx.event.request_ref)
        upstream_started = time.perf_counter()
        outcome: Outcome
        error = ""
        fields: dict[str, Any] = {}
        result: Any
        rejected: UpstreamRejected | None = None
        try:
            if ctx.send is not None:
                result, outcome, fields = await ctx.send(self.call_timeout_s)
                error = str(fields.pop("error", ""))
            else:
                assert ctx.entry is not None
                upstream = ctx.entry.upstream
                answer = await upstream.call(
                    call.tool, call.arguments, self.call_timeout_s, meta=ctx.client.meta, relay=relay
                )
                if isinstance(answer, types.InputRequiredResult):
                    result = answer
                else:
                    result = uris.rewrite(upstream, gateway_meta.to_client(answer))
                outcome = "tool_error" if isinstance(result, types.CallToolResult) and result.is_error else "ok"
        except UpstreamRejected as exc:
            outcome, error, rejected = "upstream_error", str(exc), exc
        except UpstreamTimeout as exc:
            outcome, error = "timeout", str(exc)
            result = answers.upstream_timeout(call.server, self.call_timeout_s)
        except UpstreamUnavailable as exc:
            outcome, error = "upstream_error", str(exc)
            result = answers.upstream_error(call.server)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._finish(ctx, "cancelled", latency_upstream_ms=_ms(upstream_started))
            raise
        upstream_ms = _ms(upstream_started)
        self.metrics.upstream_seconds.labels(call.server).observe(upstream_ms / 1000)
        if rejected is None and isinstance(result, types.InputRequiredResult):
            return await self._relay_input(ctx, result, upstream_ms)
        await self._finish(ctx, outcome, error=error, latency_upstream_ms=upstream_ms, **fields)
        if rejected is not None:  # the upstream's JSON-RPC error stays one (after its outcome is recorded)
            raise answers.relayed_error(rejected.error)
        return result

    async def _relay_input(
        self, ctx: CallContext, result: types.InputRequiredResult, upstream_ms: float
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Hand a 2026-07-28 upstream's input requests to the 2026-07-28 client, each admitted by policy first."""
        assert ctx.relay is not None  # upstream.call returns input-required only to a modern client's relay
        for request in (result.input_requests or {}).values():
            if await ctx.relay.admit(ctx.call.server, request) is not None:
                await self._finish(
                    ctx, "tool_error", error="upstream input request refused", latency_upstream_ms=upstream_ms
                )
                return answers.input_refused(ctx.call.name)
        state = seal_state(self._state_secret, ctx.identity.name, ctx.call.name, result.request_state, now=time.time())
        await self._finish(ctx, "input_required", latency_upstream_ms=upstream_ms)
        return types.InputRequiredResult(input_requests=to_client_requests(result.input_requests), request_state=state)

    # ---- approvals --------------------------------------------------------------------------

    async def _approval(self, ctx: CallContext) -> Any:
        """A call policy holds for a person: run it on a granted approval, or hold it for one."""
        try:
            granted = await self.desk.admit(ctx.identity.name, ctx.call, ctx.decision)
            redacted = redact(ctx.call.arguments, ctx.redact_fields)
            requested = None if granted else await self.desk.request(ctx.call, ctx.identity, ctx.decision, redacted)
        except Exception as exc:  # boundary: an approval store failure denies
            logger.exception("approval store failed for call %s", ctx.call.call_id)
            ctx.update(effect="deny", rule_ids=("fail-closed",))
            await self._finish(ctx, "denied", error=f"approval store: {exc}")
            return self._fail_closed("approvals", "the approval store could not be read or written")
        if granted is not None:
            return await self._run_granted(ctx, granted)
        assert requested is not None
        approval, created = requested
        ctx.update(approval_id=approval.id)
        if not await self._commit(ctx):
            return self._fail_closed("audit", "the audit log could not record the approval request")
        if created:
            self.desk.announce(approval)
        if ctx.client.url_elicitation and ctx.client.resumes != approval.id:
            await self._finish(ctx, "approval_required", error="approval link sent")
            return self._elicit(approval, ctx.decision)
        return await self._hold(ctx, approval)

    async def _run_granted(self, ctx: CallContext, granted: Approval) -> Any:
        """Forward a call an earlier, granted approval covers."""
        ctx.update(approval_id=granted.id, reason=f"{ctx.event.reason}; {_approved_by(granted)}")
        if not await self._commit(ctx):
            return self._fail_closed("audit", "the audit log could not record the decision")
        return await self._forward(ctx)

    async def _hold(self, ctx: CallContext, approval: Approval) -> Any:
        """Wait for the decision on a committed, held call; forward it if approved."""
        try:
            settled = await self._hold_for(ctx, approval)
            refusal = await self._recheck(ctx, settled) if settled.state == "approved" else None
            if refusal is not None:
                return await self._refuse(ctx, refusal)
            runs = settled.state == "approved" and await self.desk.use(settled)
        except Exception as exc:  # boundary: the store (or the identity store) failing while held denies
            logger.exception("approval store failed while holding call %s", ctx.call.call_id)
            ctx.update(effect="deny")
            await self._finish(ctx, "denied", error=str(exc))
            return self._fail_closed("approvals", "the approval store could not be read or written")
        if runs:
            ctx.update(reason=f"{ctx.event.reason}; {_approved_by(settled)}")
            return await self._forward(ctx)
        if settled.state == "pending":
            await self._finish(ctx, "approval_required")
            if ctx.client.url_elicitation:  # the person has the link; the client retries after a short pause
                return types.InputRequiredResult(request_state=approval.id)
            return answers.tool_error(answers.pending_message(settled, ctx.decision, self.desk.link(approval.id)))
        message = answers.refusal_message(settled)
        ctx.update(effect="deny")
        await self._finish(ctx, "denied", error=message)
        return answers.tool_error(message)

    async def _hold_for(self, ctx: CallContext, approval: Approval) -> Approval:
        """Wait for the decision; a client that cancels meanwhile ends the call as ``cancelled``."""
        try:
            return await self.desk.hold(approval.id, self.approval_hold_s)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._finish(ctx, "cancelled")
            raise

    async def _recheck(self, ctx: CallContext, approval: Approval) -> tuple[tuple[str, ...], str] | None:
        """Re-authenticate and re-decide a held call released by its approval: (rule ids, message) to refuse it.

        The key must still be active, the CURRENT policy must not deny the call, and the tool's
        listed definition must still be the accepted one the approval was requested for (a
        prompt's: still the one listed when it was held).
        """
        if not await to_thread.run_sync(self.identities.is_active, ctx.caller.name, ctx.caller.key_prefix):
            return ("revoked-key",), answers.revoked_while_held(approval)
        if ctx.call.kind == "tool":
            now = self.pool.entry(ctx.call.name)
            if now is None or not self.pins.admits(now) or now.definition_hash != approval.tool_hash:
                return ("tool-pin",), answers.redefined_while_held(ctx.call.name, approval)
        elif ctx.definition is not None and ctx.definition() != approval.tool_hash:
            return ("prompt-changed",), answers.redefined_while_held(ctx.call.name, approval)
        try:
            policy = self.policies.current
            decision = decide(policy, ctx.call, Identity(ctx.identity.name, policy.roles_of(ctx.identity.name)))
        except Exception:  # boundary: a policy that cannot be evaluated refuses the held call
            logger.exception("policy re-evaluation failed for held call %s", ctx.call.call_id)
            decision = Decision("deny", ("fail-closed",), "the policy could not be evaluated")
        if decision.effect != "deny":
            return None
        return decision.rule_ids, answers.denied_on_release(decision, approval)

    async def _refuse(self, ctx: CallContext, refusal: tuple[tuple[str, ...], str]) -> types.CallToolResult:
        """End a held call its recheck refused: audited as denied by those rules, never forwarded."""
        rules, message = refusal
        reason = f"{ctx.event.reason}; refused on release: {', '.join(rules)}"
        ctx.update(effect="deny", rule_ids=rules, reason=reason)
        await self._finish(ctx, "denied", error=message)
        return answers.tool_error(message)

    def _elicit(self, approval: Approval, decision: Decision) -> types.InputRequiredResult:
        """Point the person behind the client at the approval (URL-mode elicitation, 2026-07-28)."""
        roles = ", ".join(decision.approver_roles)
        message = f"{approval.tool_name} needs approval by a person with role {roles}: {decision.reason}"
        params = types.ElicitRequestURLParams(message=message, url=self.desk.link(approval.id))
        return types.InputRequiredResult(
            input_requests={APPROVAL_INPUT_KEY: types.ElicitRequest(params=params)}, request_state=approval.id
        )

    # ---- the audit record -------------------------------------------------------------------

    async def _commit(self, ctx: CallContext) -> bool:
        """Commit the decision event before the call is held or forwarded; False: refuse the call."""
        try:
            await self.audit.record(ctx.event, ctx.redact_fields)
        except Exception:  # boundary: any audit failure denies the call
            logger.exception("audit: decision of call %s could not be recorded", ctx.call.call_id)
            return False
        ctx.committed = True
        return True

    async def _finish(self, ctx: CallContext, outcome: Outcome, *, error: str = "", **fields: Any) -> None:
        """Record how the call ended: one event if its decision was never committed, else an outcome event.

        The answer stands even if this fails: a call that ends here was either never forwarded
        or has already run (its decision record exists); the failure is counted and logged.
        """
        self.metrics.outcomes.labels(outcome).inc()
        self.metrics.call_seconds.observe(_ms(ctx.started) / 1000)
        phase: Phase = "outcome" if ctx.committed else "decision"
        final = dataclasses.replace(
            ctx.event, phase=phase, outcome=outcome, error=error, latency_total_ms=_ms(ctx.started), **fields
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

    def _fail_closed(self, reason: str, message: str) -> types.CallToolResult:
        self.metrics.fail_closed.labels(reason).inc()
        return answers.tool_error(answers.fail_closed(message))


def _requires_task(entry: CatalogEntry) -> bool:
    execution = entry.tool.execution
    return execution is not None and execution.task_support == "required"


def _approved_by(approval: Approval) -> str:
    return f"approval {approval.id} approved by {approval.decided_by}: {approval.decided_reason}"


def _new_id() -> str:
    return uuid.uuid4().hex


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
