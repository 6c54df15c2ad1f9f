"""Rate limits: the one stateful part of policy, kept out of the pure `decide()`.

Owns `RateLimits`, what the gateway asks of a limiter (`await admit(...)`), and `RateLimiter`,
an in-memory sliding-window log per (limit id, identity, tool): the default, and what a
single process on SQLite uses. Replicas on PostgreSQL share one budget through
`gateway.shared.ratelimits.SharedRateLimiter` instead (same semantics, the database's clock).
A limiter that cannot answer raises `RateLimitStoreError`; the gateway then denies the call.
It counts only calls that policy would otherwise let through (allow or approve) and
that it does not itself refuse, so a denied call never uses up a caller's budget.
State is per process and lost on restart; limits are matched by id, so a hot reload
that keeps an id keeps its counters. Memory stays bounded by the callers of the last window:
the gateway lifespan runs `sweep`, which drops every window with no call left in it (such a
window counts nothing, so dropping it changes no decision).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol

import anyio

from gateway.policy.compiled import Policy
from gateway.policy.engine import decide
from gateway.types import Decision, Identity, ToolCall


class RateLimitStoreError(Exception):
    """The shared rate-limit counters could not be read or written. The gateway must deny the call."""


class RateLimits(Protocol):
    """What the gateway's call pipeline asks of a rate limiter."""

    async def admit(
        self, policy: Policy, identity: Identity, call: ToolCall, now: float, *, decision: Decision
    ) -> Decision | None:
        """None if the call is within every matching limit (it is then counted); else a deny naming the limit."""
        ...

    async def sweep(self, interval_s: float) -> None:
        """Drop state no decision depends on any more, every `interval_s` seconds, until cancelled."""
        ...


class RateLimiter:
    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, str], deque[float]] = {}
        self._window_s: dict[tuple[str, str, str], float] = {}

    @property
    def windows(self) -> int:
        """How many (limit, identity, tool) windows are held."""
        return len(self._hits)

    def check(
        self,
        policy: Policy,
        identity: Identity,
        call: ToolCall,
        now: float | None = None,
        *,
        decision: Decision | None = None,
    ) -> Decision | None:
        """None if the call is within every matching limit (and count it); else a deny naming the limit.

        `decision` is what `decide()` said for this call; it is computed when not given.
        A call that is denied anyway is neither counted nor limited. `now` is seconds on
        any monotonic clock (default `time.monotonic()`).
        """
        limits = policy.rate_limits_for(identity.name, call.name)
        if not limits:
            return None
        if (decision or decide(policy, call, identity)).effect == "deny":
            return None
        now = time.monotonic() if now is None else now
        windows = []
        for limit in limits:
            key = (limit.id, identity.name, call.name)
            hits = self._hits.setdefault(key, deque())
            self._window_s[key] = limit.window_s  # a reload may change the window; the sweep uses the latest
            while hits and hits[0] <= now - limit.window_s:
                hits.popleft()
            if len(hits) >= limit.limit:
                reason = f"rate limit {limit.id}: {limit.limit} calls per {limit.window_s:g}s for {call.name}"
                return Decision("deny", (limit.id,), reason)
            windows.append(hits)
        for hits in windows:
            hits.append(now)
        return None

    async def admit(
        self, policy: Policy, identity: Identity, call: ToolCall, now: float, *, decision: Decision
    ) -> Decision | None:
        """`check` for the gateway's pipeline (`RateLimits`): in memory, it never waits."""
        return self.check(policy, identity, call, now, decision=decision)

    def forget_idle(self, now: float | None = None) -> int:
        """Drop the windows whose every call has left them (they limit nothing); how many were dropped."""
        now = time.monotonic() if now is None else now
        idle = [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self._window_s[k]]
        for key in idle:
            del self._hits[key], self._window_s[key]
        return len(idle)

    async def sweep(self, interval_s: float) -> None:
        """`forget_idle` every `interval_s` seconds until cancelled (the gateway lifespan runs this)."""
        while True:
            await anyio.sleep(interval_s)
            self.forget_idle()
