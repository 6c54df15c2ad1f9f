"""Rate-limit budgets shared by every gateway replica and worker on one PostgreSQL database.

Owns `SharedRateLimiter`: the same sliding-window semantics as the in-memory
`gateway.policy.ratelimit.RateLimiter` (counts only calls policy lets through and that it
does not itself refuse; a call counts against every matching limit), kept as a log of hits in
``ratelimit_hits``. One check is one transaction: take a transaction-scoped advisory lock per
(limit, identity, tool) key, in a fixed order (no deadlock between two calls matching the same
limits), read the database's clock, count the hits inside each window, and insert one hit per
limit only if every limit has room. Two replicas racing for the last slot serialize on the
lock, so the budget is one across replicas, never one per replica.

Time is the DATABASE's clock (``clock_timestamp()``), one clock for every replica; the `now`
the pipeline passes (a process-local monotonic clock) is ignored. The sweep deletes hits past
the window they were counted in (``expires_at``); a reload that lengthens a window may thus
forget hits a little early (lenient, never stricter than the file says).

Fail closed: any database error raises `RateLimitStoreError` and the gateway denies the call.

Must never: decide policy (``decide()`` does) or run on SQLite (no advisory locks there; one
SQLite process uses the in-memory limiter).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio
from anyio import to_thread
from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from gateway.models import RateLimitHit
from gateway.policy.compiled import Policy, RateLimit
from gateway.policy.engine import decide
from gateway.policy.ratelimit import RateLimitStoreError
from gateway.types import Decision, Identity, ToolCall

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x5752_4C31
"""First key of the two-key advisory locks taken per budget ("WRL1"); the second is hashtext(key)."""

_LOCK_AND_NOW = text(
    "SELECT pg_advisory_xact_lock(:namespace, hashtext(:key)), CAST(extract(epoch FROM clock_timestamp()) AS float8)"
)


def _key(limit_id: str, identity: str, tool: str) -> str:
    return "\x1f".join((limit_id, identity, tool))


class SharedRateLimiter:
    """`RateLimits` over ``ratelimit_hits`` on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("the shared rate limiter needs PostgreSQL (use RateLimiter in memory)")
        self._engine = engine

    @property
    def windows(self) -> int:
        """How many (limit, identity, tool) windows hold hits not yet swept (one database query)."""
        keys = col(RateLimitHit.limit_id), col(RateLimitHit.identity), col(RateLimitHit.tool)
        distinct = select(*keys).distinct().subquery()
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(distinct)).scalar_one())

    async def admit(
        self, policy: Policy, identity: Identity, call: ToolCall, now: float, *, decision: Decision
    ) -> Decision | None:
        """`check` in a worker thread (it waits on the database)."""
        if not policy.rate_limits_for(identity.name, call.name):
            return None  # no limit matches: no database round trip
        return await to_thread.run_sync(lambda: self.check(policy, identity, call, decision=decision))

    def check(
        self, policy: Policy, identity: Identity, call: ToolCall, *, decision: Decision | None = None
    ) -> Decision | None:
        """None if the call is within every matching limit (and count it); else a deny naming the limit."""
        limits = sorted(policy.rate_limits_for(identity.name, call.name), key=lambda limit: limit.id)
        if not limits or (decision or decide(policy, call, identity)).effect == "deny":
            return None
        try:
            with self._engine.begin() as conn:
                return self._count(conn, limits, identity.name, call.name)
        except SQLAlchemyError as exc:
            raise RateLimitStoreError(f"rate-limit counters could not be read or written: {exc}") from exc

    def _count(self, conn: Connection, limits: Sequence[RateLimit], identity: str, tool: str) -> Decision | None:
        now = 0.0
        for limit in limits:  # sorted by id: every caller locks in the same order
            params = {"namespace": LOCK_NAMESPACE, "key": _key(limit.id, identity, tool)}
            now = float(conn.execute(_LOCK_AND_NOW, params).one()[1])
        for limit in limits:
            used = conn.execute(
                select(func.count())
                .select_from(RateLimitHit)
                .where(
                    col(RateLimitHit.limit_id) == limit.id,
                    col(RateLimitHit.identity) == identity,
                    col(RateLimitHit.tool) == tool,
                    col(RateLimitHit.at) > now - limit.window_s,
                )
            ).scalar_one()
            if used >= limit.limit:
                reason = f"rate limit {limit.id}: {limit.limit} calls per {limit.window_s:g}s for {tool}"
                return Decision("deny", (limit.id,), reason)
        rows = [
            {"limit_id": rl.id, "identity": identity, "tool": tool, "at": now, "expires_at": now + rl.window_s}
            for rl in limits
        ]
        conn.execute(insert(RateLimitHit), rows)
        return None

    def forget_idle(self) -> int:
        """Delete the hits past the window they were counted in; how many were deleted."""
        statement = text(
            "DELETE FROM ratelimit_hits WHERE expires_at <= CAST(extract(epoch FROM clock_timestamp()) AS float8)"
        )
        with self._engine.begin() as conn:
            return int(conn.execute(statement).rowcount)

    async def sweep(self, interval_s: float) -> None:
        """`forget_idle` every `interval_s` seconds until cancelled; a failed sweep is logged and retried."""
        while True:
            await anyio.sleep(interval_s)
            try:
                await to_thread.run_sync(self.forget_idle)
            except SQLAlchemyError:  # boundary: a missed sweep only delays cleanup; checks stay correct
                logger.exception("rate-limit sweep failed; retrying in %ss", interval_s)
