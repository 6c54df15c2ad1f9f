"""Rate limits: the one stateful part of policy, kept out of the pure `decide()`.

Owns `RateLimiter`, an in-memory sliding-window log per (limit id, identity, tool).
It counts only calls that policy would otherwise let through (allow or approve) and
that it does not itself refuse, so a denied call never uses up a caller's budget.
State is per process and lost on restart; limits are matched by id, so a hot reload
that keeps an id keeps its counters.
"""

from __future__ import annotations

import time
from collections import deque

from gateway.policy.compiled import Policy
from gateway.policy.engine import decide
from gateway.types import Decision, Identity, ToolCall


class RateLimiter:
    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, str], deque[float]] = {}

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
            while hits and hits[0] <= now - limit.window_s:
                hits.popleft()
            if len(hits) >= limit.limit:
                reason = f"rate limit {limit.id}: {limit.limit} calls per {limit.window_s:g}s for {call.name}"
                return Decision("deny", (limit.id,), reason)
            windows.append(hits)
        for hits in windows:
            hits.append(now)
        return None

    def forget_idle(self, now: float | None = None, older_than_s: float = 3600.0) -> None:
        """Drop windows with no call in `older_than_s` seconds (bounds memory in long runs)."""
        now = time.monotonic() if now is None else now
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - older_than_s]:
            del self._hits[key]
