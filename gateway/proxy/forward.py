"""Forwarding one decided, committed call upstream, and answering with what came back.

Owns: ``Forwarder.forward``: a tool that requires tasks is refused (audited) with a
JSON-RPC error before it is sent; the call's ``CallRelay`` gets its gate bound (policy +
audit of the upstream's server requests, ``gateway.server_requests``); a tool call goes
to its upstream's ``Upstream.call`` (its result's resource URIs rewritten to public ones,
``gateway.uris``), any other call through its context's ``send``; the outcome is recorded,
a cancelled call as ``cancelled``. A 2026-07-28 upstream's input-required result is relayed
to a 2026-07-28 client under ``upstream:``-prefixed keys, each request admitted by policy
first, with a requestState sealed to the identity and tool (``restore`` opens it on the
client's retry, whose answers go back upstream). The sealing secret is process-local: a restart invalidates it.

Never: sends a call whose decision is not committed (the pipeline commits it first), or
puts an upstream's or an exception's text in an answer (``gateway.answers`` words them;
an upstream's JSON-RPC error stays that error).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import anyio
import mcp_types as types

from gateway import answers, uris
from gateway import meta as gateway_meta
from gateway.metrics import Metrics
from gateway.proxy.context import CallContext, JsonRpcRefusal, elapsed_ms
from gateway.proxy.record import CallRecord
from gateway.relay import CallRelay, open_state, seal_state, to_client_requests
from gateway.server_requests import ServerRequestGuard
from gateway.types import Caller, Outcome
from gateway.upstream.catalog import CatalogEntry
from gateway.upstream.errors import UpstreamRejected, UpstreamTimeout, UpstreamUnavailable


class Forwarder:
    """Sends committed calls upstream and records how they ended (see the module docstring)."""

    def __init__(
        self, *, guard: ServerRequestGuard, record: CallRecord, metrics: Metrics, call_timeout_s: float
    ) -> None:
        self.guard = guard
        self.record = record
        self.metrics = metrics
        self.call_timeout_s = call_timeout_s
        self._state_secret = secrets.token_bytes(32)
        """Seals the requestState of relayed upstream input rounds (process-local: a restart invalidates them)."""

    def restore(self, relay: CallRelay, caller: Caller, public_name: str) -> None:
        """Open the requestState a client returned with its answers (raises ``StaleState``)."""
        assert relay.returned_state is not None
        relay.upstream_state = open_state(
            self._state_secret, caller.name, public_name, relay.returned_state, now=time.time()
        )

    async def forward(self, ctx: CallContext) -> Any:
        """Send a call whose decision is committed upstream; record its outcome; answer."""
        call = ctx.call
        if ctx.send is None and ctx.entry is not None and _requires_task(ctx.entry):
            await self.record.finish(ctx, "denied", error="execution.taskSupport required: tasks are not supported")
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
                await self.record.finish(ctx, "cancelled", latency_upstream_ms=elapsed_ms(upstream_started))
            raise
        upstream_ms = elapsed_ms(upstream_started)
        self.metrics.upstream_seconds.labels(call.server).observe(upstream_ms / 1000)
        if rejected is None and isinstance(result, types.InputRequiredResult):
            return await self._relay_input(ctx, result, upstream_ms)
        await self.record.finish(ctx, outcome, error=error, latency_upstream_ms=upstream_ms, **fields)
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
                await self.record.finish(
                    ctx, "tool_error", error="upstream input request refused", latency_upstream_ms=upstream_ms
                )
                return answers.input_refused(ctx.call.name)
        state = seal_state(self._state_secret, ctx.identity.name, ctx.call.name, result.request_state, now=time.time())
        await self.record.finish(ctx, "input_required", latency_upstream_ms=upstream_ms)
        return types.InputRequiredResult(input_requests=to_client_requests(result.input_requests), request_state=state)


def _requires_task(entry: CatalogEntry) -> bool:
    execution = entry.tool.execution
    return execution is not None and execution.task_support == "required"
