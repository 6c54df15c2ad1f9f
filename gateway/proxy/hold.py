"""Calls policy holds for a person (effect ``approve``): run on a granted approval, or held for one.

Owns: ``ApprovalHold.handle``. A call an approved approval covers runs at once
(``ApprovalDesk.admit``: an exact one is consumed, so it runs once). Otherwise it is
recorded as pending (or joins the pending approval of the identical call) and waits up to
``approval_hold_s`` for the decision: approved → forwarded, denied or expired → a tool error
naming the approval and the reason, still undecided → "pending approval <id>". A client that
takes URL elicitations (2026-07-28) is instead answered at once with an input-required
result pointing at the approval (``APPROVAL_INPUT_KEY``); its retries then wait like any
other. A held call released by its approval is checked again before it is forwarded
(``_recheck``): the caller's key must still be active, the CURRENT policy must not deny it,
and the tool's listed definition must be the accepted one the approval was requested for
(approvals bind ``definition_hash``); otherwise it is refused, audited as denied by
``revoked-key``, ``tool-pin`` (``prompt-changed`` for a prompt get whose listed prompt
changed) or the denying rule.

Fail closed: an approval store (or identity store) that cannot be read or written denies
the call. Never: forwards a call itself (``forward``, the pipeline's, does) or decides an
approval (people do, through ``gateway.approvals``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types
from anyio import to_thread

from gateway import answers
from gateway.approvals.desk import ApprovalDesk
from gateway.identities import IdentityStore
from gateway.models import Approval
from gateway.pins import ToolPins
from gateway.policy import PolicyStore, decide
from gateway.proxy.context import CallContext
from gateway.proxy.record import CallRecord
from gateway.redact import redact
from gateway.types import Decision, Identity
from gateway.upstream.pool import UpstreamPool

logger = logging.getLogger(__name__)

APPROVAL_INPUT_KEY = "approval"
"""Key of the approval's URL elicitation in an input-required result (and of the client's answer)."""


class ApprovalHold:
    """Runs or holds the calls policy holds for approval (see the module docstring)."""

    def __init__(
        self,
        *,
        desk: ApprovalDesk,
        identities: IdentityStore,
        policies: PolicyStore,
        pool: UpstreamPool,
        pins: ToolPins,
        record: CallRecord,
        forward: Callable[[CallContext], Awaitable[Any]],
        approval_hold_s: float,
    ) -> None:
        self.desk = desk
        self.identities = identities
        self.policies = policies
        self.pool = pool
        self.pins = pins
        self.record = record
        self.forward = forward
        self.approval_hold_s = approval_hold_s

    async def handle(self, ctx: CallContext) -> Any:
        """A call policy holds for a person: run it on a granted approval, or hold it for one."""
        try:
            granted = await self.desk.admit(ctx.identity.name, ctx.call, ctx.decision)
            redacted = redact(ctx.call.arguments, ctx.redact_fields)
            requested = None if granted else await self.desk.request(ctx.call, ctx.identity, ctx.decision, redacted)
        except Exception as exc:  # boundary: an approval store failure denies
            logger.exception("approval store failed for call %s", ctx.call.call_id)
            ctx.update(effect="deny", rule_ids=("fail-closed",))
            await self.record.finish(ctx, "denied", error=f"approval store: {exc}")
            return self.record.fail_closed("approvals", "the approval store could not be read or written")
        if granted is not None:
            return await self._run_granted(ctx, granted)
        assert requested is not None
        approval, created = requested
        ctx.update(approval_id=approval.id)
        if not await self.record.commit(ctx):
            return self.record.fail_closed("audit", "the audit log could not record the approval request")
        if created:
            self.desk.announce(approval)
        if ctx.client.url_elicitation and ctx.client.resumes != approval.id:
            await self.record.finish(ctx, "approval_required", error="approval link sent")
            return self._elicit(approval, ctx.decision)
        return await self._hold(ctx, approval)

    async def _run_granted(self, ctx: CallContext, granted: Approval) -> Any:
        """Forward a call an earlier, granted approval covers."""
        ctx.update(approval_id=granted.id, reason=f"{ctx.event.reason}; {_approved_by(granted)}")
        if not await self.record.commit(ctx):
            return self.record.fail_closed("audit", "the audit log could not record the decision")
        return await self.forward(ctx)

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
            await self.record.finish(ctx, "denied", error=str(exc))
            return self.record.fail_closed("approvals", "the approval store could not be read or written")
        if runs:
            ctx.update(reason=f"{ctx.event.reason}; {_approved_by(settled)}")
            return await self.forward(ctx)
        if settled.state == "pending":
            await self.record.finish(ctx, "approval_required")
            if ctx.client.url_elicitation:  # the person has the link; the client retries after a short pause
                return types.InputRequiredResult(request_state=approval.id)
            return answers.tool_error(answers.pending_message(settled, ctx.decision, self.desk.link(approval.id)))
        message = answers.refusal_message(settled)
        ctx.update(effect="deny")
        await self.record.finish(ctx, "denied", error=message)
        return answers.tool_error(message)

    async def _hold_for(self, ctx: CallContext, approval: Approval) -> Approval:
        """Wait for the decision; a client that cancels meanwhile ends the call as ``cancelled``."""
        try:
            return await self.desk.hold(approval.id, self.approval_hold_s)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self.record.finish(ctx, "cancelled")
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
        await self.record.finish(ctx, "denied", error=message)
        return answers.tool_error(message)

    def _elicit(self, approval: Approval, decision: Decision) -> types.InputRequiredResult:
        """Point the person behind the client at the approval (URL-mode elicitation, 2026-07-28)."""
        roles = ", ".join(decision.approver_roles)
        message = f"{approval.tool_name} needs approval by a person with role {roles}: {decision.reason}"
        params = types.ElicitRequestURLParams(message=message, url=self.desk.link(approval.id))
        return types.InputRequiredResult(
            input_requests={APPROVAL_INPUT_KEY: types.ElicitRequest(params=params)}, request_state=approval.id
        )


def _approved_by(approval: Approval) -> str:
    return f"approval {approval.id} approved by {approval.decided_by}: {approval.decided_reason}"
