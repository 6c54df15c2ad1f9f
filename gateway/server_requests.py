"""Policy and audit of an upstream's requests to the client: sampling, elicitation, roots.

Owns: ``ServerRequestGuard.bind(...)``, the gate a forwarded call's ``CallRelay`` runs every
server→client request of that call through. Each request is decided as
``ToolCall(kind="sampling"|"elicitation"|"roots", name=<server>, tool=<method>,
arguments=<params>)`` by ``decide()`` for the identity whose call caused it, then audited
with ``method`` = the MCP method (``sampling/createMessage``, ``elicitation/create``,
``roots/list``) and its reason naming the causing call. Allowed: the decision is committed
before the request goes to the client, and its outcome (``ok``, ``tool_error`` when the
client refused it, ``cancelled``, or ``input_required`` for a 2026-07-28 client that takes
it in an input-required result) is recorded after. Denied, or held for approval (approval
of server requests is not supported, so ``approve`` refuses), or policy/audit failing: the
upstream gets a JSON-RPC error and the refusal is audited; nothing reaches the client.

Never: sends anything to a client (``relay.py`` does), or decides anything itself.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid

import anyio
import mcp_types as types

from gateway import answers
from gateway.audit.writer import AuditWriter
from gateway.metrics import Metrics
from gateway.policy import PolicyStore, decide
from gateway.relay import SERVER_REQUEST_KINDS, SendToClient, ServerRequestGate, params_json
from gateway.types import AuditEvent, Decision, Identity, Outcome, ToolCall

logger = logging.getLogger(__name__)


class ServerRequestGuard:
    def __init__(self, *, policies: PolicyStore, audit: AuditWriter, metrics: Metrics) -> None:
        self.policies = policies
        self.audit = audit
        self.metrics = metrics

    def bind(self, identity: str, call_id: str, request_ref: str | None) -> ServerRequestGate:
        """The gate of one forwarded call by ``identity`` (its ``call_id`` names it in the audit)."""

        async def gate(
            server: str, request: types.InputRequest, send: SendToClient | None
        ) -> types.InputResponse | types.ErrorData | None:
            return await self._run(identity, call_id, request_ref, server, request, send=send)

        return gate

    async def _run(
        self,
        identity: str,
        parent: str,
        request_ref: str | None,
        server: str,
        request: types.InputRequest,
        *,
        send: SendToClient | None,
    ) -> types.InputResponse | types.ErrorData | None:
        started = time.perf_counter()
        method = request.method
        call = ToolCall(
            server, server, method, params_json(request), uuid.uuid4().hex, kind=SERVER_REQUEST_KINDS[method]
        )
        decision = self._decide(identity, call)
        event = AuditEvent(
            call_id=call.call_id,
            phase="decision",
            method=method,
            identity=identity,
            server=server,
            tool=method,
            arguments=call.arguments,
            args_hash=call.args_hash,
            effect=decision.effect,
            rule_ids=decision.rule_ids,
            reason=f"{decision.reason}; during call {parent}",
            request_ref=request_ref,
        )
        self.metrics.decisions.labels(decision.effect).inc()
        if decision.effect != "allow":
            await self._record(dataclasses.replace(event, effect="deny", outcome="denied"), started)
            return types.ErrorData(
                code=types.INVALID_REQUEST, message=answers.server_request_refused(method, server, decision)
            )
        if send is None:
            recorded = await self._record(dataclasses.replace(event, outcome="input_required"), started)
            return None if recorded else _failed(method)
        if not await self._record(event, started):
            return _failed(method)
        return await self._deliver(event, send, started)

    async def _deliver(
        self, event: AuditEvent, send: SendToClient, started: float
    ) -> types.InputResponse | types.ErrorData:
        outcome: Outcome = "ok"
        try:
            answer = await send()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._record(dataclasses.replace(event, phase="outcome", outcome="cancelled"), started)
            raise
        except Exception:  # boundary: a client that fails to answer refuses the request
            logger.exception("relaying %s to the client failed", event.method)
            answer = types.ErrorData(code=types.INTERNAL_ERROR, message=f"{event.method}: the client did not answer")
        if isinstance(answer, types.ErrorData):
            outcome = "tool_error"
        await self._record(
            dataclasses.replace(event, phase="outcome", outcome=outcome, error=_error_of(answer)), started
        )
        return answer

    def _decide(self, identity_name: str, call: ToolCall) -> Decision:
        try:
            policy = self.policies.current
            decision = decide(policy, call, Identity(identity_name, policy.roles_of(identity_name)))
        except Exception:  # boundary: policy failure refuses the request
            logger.exception("policy evaluation failed for %s of %s", call.tool, call.server)
            self.metrics.fail_closed.labels("policy").inc()
            return Decision("deny", ("fail-closed",), "policy could not be evaluated; failing closed")
        if decision.effect == "approve":
            return Decision(
                "deny", decision.rule_ids, f"{decision.reason} (server requests cannot be held for approval)"
            )
        return decision

    async def _record(self, event: AuditEvent, started: float) -> bool:
        final = dataclasses.replace(event, latency_total_ms=(time.perf_counter() - started) * 1000)
        try:
            await self.audit.record(final)
        except Exception:  # boundary: an unrecorded server request is refused
            logger.exception("audit: %s %s could not be recorded", event.method, event.call_id)
            self.metrics.fail_closed.labels("audit").inc()
            return False
        if event.outcome is not None:
            self.metrics.outcomes.labels(event.outcome).inc()
        return True


def _failed(method: str) -> types.ErrorData:
    return types.ErrorData(code=types.INTERNAL_ERROR, message=answers.server_request_failed(method))


def _error_of(answer: types.InputResponse | types.ErrorData) -> str:
    return answer.message[:500] if isinstance(answer, types.ErrorData) else ""
