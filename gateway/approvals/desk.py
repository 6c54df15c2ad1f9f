"""The approval desk: where held calls wait, approvers decide, and undecided approvals expire.

Owns: the async side of approvals in one gateway process. ``approvals.ApprovalStore``
owns the rows and their atomic transitions; the desk sequences them and audits each
one through the audit writer.

- ``request`` finds the pending approval of this very call (a retry waits on the same
  one) or records a new one; ``announce`` fires the webhook for a new one, in the
  background.
- ``hold`` waits for the decision on a per-approval event (``approvals.wake``): set when the
  decision is made in this process (REST, elicitation) and, on PostgreSQL, by the database
  listener when any process (another replica or worker, the CLI) commits one. It re-reads the
  row every ``poll_s`` only while no listener delivers decisions (SQLite, where the CLI
  writes the file directly, or a PostgreSQL listener that is reconnecting). It marks the
  approval expired when its time is up.
- ``admit`` lets a retried call through on an approved approval: an exact one is
  consumed atomically (one run, whoever races), a ``tool``-scoped one is reused until
  ``valid_until``.
- ``settle`` (also used by the CLI) checks the decider (role, not the requester),
  audits the decision, then applies it: there is never an applied decision without an
  audit record. A decision that loses a race is audited as not applied.
- ``sweep`` marks undecided approvals expired and audits each expiry once.

Must never: decide policy, forward a call, or write audit rows except through
``AuditWriter.record``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.abc
from anyio import to_thread

from gateway.approvals.store import (
    ApprovalConflict,
    ApprovalForbidden,
    ApprovalNotFound,
    ApprovalStore,
    ApprovalStoreError,
    Verdict,
    conflict,
    decider_problem,
    is_expired,
)
from gateway.approvals.wake import Wakeups
from gateway.approvals.webhook import Webhook
from gateway.audit.writer import AuditWriter
from gateway.models import Approval, utcnow
from gateway.policy import PolicyStore
from gateway.types import AuditEvent, Decision, Identity, ToolCall

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def _run(fn: Callable[..., T], *args: Any) -> T:
    return await to_thread.run_sync(fn, *args)


def _rule_ids(approval: Approval) -> tuple[str, ...]:
    return tuple(json.loads(approval.rule_ids))


def _event(approval: Approval, method: str, identity: str, **fields: Any) -> AuditEvent:
    """An audit event about ``approval``, linked to the held call by its call_id and approval_id.

    Its arguments are ``{"kind": ...}``: what was approved (a tool call, a resource read ...) is
    on the record itself, even when the held call's own decision event never committed.
    """
    return AuditEvent(
        call_id=approval.call_id,
        phase="decision",
        method=method,
        identity=identity,
        server=approval.server,
        tool=approval.tool,
        arguments={"kind": approval.kind},
        args_hash=approval.args_hash,
        rule_ids=_rule_ids(approval),
        approval_id=approval.id,
        **fields,
    )


async def expire(store: ApprovalStore, audit: AuditWriter, approval: Approval) -> Approval:
    """Mark ``approval`` expired if it is pending past its expiry; audit it once (by whoever marks it)."""
    if await _run(store.expire, approval.id, utcnow()):
        event = _event(
            approval, "approvals/expire", approval.identity, effect="deny", reason="expired undecided", outcome="denied"
        )
        try:
            await audit.record(event)
        except Exception:  # boundary: the expiry denies the call either way; say so loudly
            logger.exception("audit: expiry of approval %s could not be recorded", approval.id)
    refreshed = await _run(store.get, approval.id)
    return refreshed if refreshed is not None else approval


async def settle(
    store: ApprovalStore,
    audit: AuditWriter,
    approval_id: str,
    *,
    decider: str,
    roles: frozenset[str],
    verdict: Verdict,
    reason: str,
) -> Approval:
    """Decide ``approval_id`` as ``decider``; return the decided row.

    Raises ``ApprovalNotFound``, ``ApprovalForbidden`` (role missing, or the requester
    itself), ``ApprovalConflict`` (not pending, or expired: it is then marked expired),
    ``ApprovalStoreError``, or ``AuditError`` (the decision is then not applied).
    """
    current = await _run(store.get, approval_id)
    if current is None:
        raise ApprovalNotFound(f"no approval {approval_id!r}")
    problem = decider_problem(current, decider, roles)
    if problem is not None:
        raise ApprovalForbidden(problem)
    now = utcnow()
    if is_expired(current, now):
        current = await expire(store, audit, current)
    if current.state != "pending":
        raise conflict(current, now)
    effect = "allow" if verdict == "approve" else "deny"
    await audit.record(_event(current, "approvals/decide", decider, effect=effect, reason=reason))
    try:
        return await _run(store.decide, approval_id, verdict, decider, reason, utcnow())
    except ApprovalConflict as exc:
        void = _event(current, "approvals/decide", decider, effect=effect, reason=reason, error=f"not applied: {exc}")
        await audit.record(void)
        raise


class ApprovalDesk:
    def __init__(
        self,
        store: ApprovalStore,
        audit: AuditWriter,
        policies: PolicyStore,
        *,
        ttl_s: float,
        poll_s: float,
        base_url: str,
        webhook: Webhook | None = None,
        listen_dsn: str | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.policies = policies
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self.base_url = base_url.rstrip("/")
        self.webhook = webhook
        self.wakeups = Wakeups()
        self.listen_dsn = listen_dsn
        """PostgreSQL URL the wake-up listener connects to (None: SQLite, no notifications)."""
        self._tg: anyio.abc.TaskGroup | None = None

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Run the expiry sweep, the wake-up listener and webhooks in ``tg`` (the lifespan's task group)."""
        self._tg = tg
        tg.start_soon(self.sweep_forever, name="approval-sweep")
        if self.listen_dsn is not None:
            tg.start_soon(self.wakeups.listen_forever, self.listen_dsn, self.poll_s, name="approval-listener")

    def link(self, approval_id: str) -> str:
        """Where a person finds this approval (REST: GET returns it, POST .../approve|deny decides)."""
        return f"{self.base_url}/approvals/{approval_id}"

    # ---- the held call ---------------------------------------------------------------------

    async def admit(self, identity: str, call: ToolCall, decision: Decision) -> Approval | None:
        """An approved approval covering this call, taken for this run; None if there is none."""
        now = utcnow()
        for approval in await _run(self.store.find_granted, identity, call, decision, now):
            if approval.scope == "tool" or await _run(self.store.consume, approval.id, now):
                return approval
        return None

    async def request(
        self, call: ToolCall, identity: Identity, decision: Decision, redacted_arguments: dict[str, Any]
    ) -> tuple[Approval, bool]:
        """The pending approval of this very call, or a new one; the flag says it is new."""
        existing = await _run(self.store.find_pending, identity.name, call, utcnow())
        if existing is not None:
            return existing, False
        created = await _run(self.store.create, call, identity, decision, redacted_arguments, self.ttl_s)
        return created, True

    def announce(self, approval: Approval) -> None:
        """Fire the webhook for a new approval in the background; never waits, never fails the call."""
        if self.webhook is None or self._tg is None:
            return
        payload = {"event": "approval.pending", "approval": approval.public().model_dump(mode="json")}
        payload["url"] = self.link(approval.id)
        self._tg.start_soon(self.webhook.deliver, "approval.pending", payload, name=f"webhook-{approval.id}")

    async def hold(self, approval_id: str, timeout_s: float) -> Approval:
        """Wait up to ``timeout_s`` for a decision; return the row as it then is (maybe still pending)."""
        deadline = time.monotonic() + timeout_s
        self.wakeups.enter(approval_id)
        try:
            while True:
                woken = self.wakeups.event(approval_id)  # before the read: a decision after it still wakes us
                approval = await _run(self.store.get, approval_id)
                if approval is None:
                    raise ApprovalStoreError(f"approval {approval_id} disappeared while held")
                if approval.state != "pending":
                    return approval
                now = utcnow()
                if is_expired(approval, now):
                    return await expire(self.store, self.audit, approval)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return approval
                until_expiry = (approval.expires_at - now).total_seconds()
                wait_s = min(remaining, until_expiry)
                if not self.wakeups.listening:
                    wait_s = min(wait_s, self.poll_s)
                with anyio.move_on_after(wait_s):
                    await woken.wait()
        finally:
            self.wakeups.leave(approval_id)

    async def use(self, approval: Approval) -> bool:
        """Take the run a just-approved approval allows the held call (exact: consume it once)."""
        now = utcnow()
        if approval.scope == "tool":
            return approval.valid_until is not None and approval.valid_until > now
        return await _run(self.store.consume, approval.id, now)

    # ---- approvers ---------------------------------------------------------------------------

    async def decide(self, approval_id: str, decider: str, verdict: Verdict, reason: str) -> Approval:
        """``settle`` with the decider's roles from the live policy, then wake the held calls."""
        roles = self.policies.current.roles_of(decider)
        approval = await settle(
            self.store, self.audit, approval_id, decider=decider, roles=roles, verdict=verdict, reason=reason
        )
        self.wakeups.wake(approval_id)
        return approval

    def may_see(self, approval: Approval, name: str) -> bool:
        """The requester and anyone holding one of its approver roles may read an approval."""
        roles = self.policies.current.roles_of(name)
        return name == approval.identity or decider_problem(approval, name, roles) is None

    # ---- expiry ------------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Mark every undecided approval past its expiry expired, each audited once."""
        for approval in await _run(self.store.due_for_expiry, utcnow()):
            await expire(self.store, self.audit, approval)

    async def sweep_forever(self) -> None:
        failing = False
        while True:
            try:
                await self.sweep()
            except Exception:  # boundary: keep sweeping; held calls still expire on their own
                if not failing:
                    logger.exception("approval expiry sweep failed; retrying every %ss", self.poll_s)
                failing = True
            else:
                if failing:
                    logger.info("approval expiry sweep works again")
                failing = False
            await anyio.sleep(self.poll_s)
