"""RateLimiter: sliding window per identity and tool, counting only calls policy lets through."""

from __future__ import annotations

from collections.abc import Callable

from gateway.policy import Policy, RateLimiter
from gateway.types import Decision
from tests.gateway.policy.conftest import call, who

POLICY = """
identities:
  a: {grants: ["time__*", "git__git_reset"]}
  b: {grants: ["time__*"]}
rules:
  - {id: no-reset, effect: deny, tools: [git__git_reset]}
rate_limits:
  - {id: rl-time, tools: ["time__*"], identities: ["*"], limit: 2, window_s: 10}
  - {id: rl-reset, tools: [git__git_reset], limit: 1, window_s: 10}
"""


def test_window_slides(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy(POLICY)
    limiter = RateLimiter()
    a, now_call = who(policy, "a"), call("time__get_current_time")
    assert limiter.check(policy, a, now_call, now=0.0) is None
    assert limiter.check(policy, a, now_call, now=1.0) is None
    denied = limiter.check(policy, a, now_call, now=2.0)
    assert denied == Decision("deny", ("rl-time",), "rate limit rl-time: 2 calls per 10s for time__get_current_time")
    assert limiter.check(policy, a, now_call, now=9.9) is not None
    assert limiter.check(policy, a, now_call, now=10.0) is None  # the call at 0.0 left the window
    assert limiter.check(policy, a, now_call, now=10.5) is not None  # 1.0 and 10.0 are inside


def test_counts_are_per_identity_and_per_tool(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy(POLICY)
    limiter = RateLimiter()
    a, b = who(policy, "a"), who(policy, "b")
    for _ in range(2):
        assert limiter.check(policy, a, call("time__get_current_time"), now=0.0) is None
    assert limiter.check(policy, a, call("time__get_current_time"), now=0.0) is not None
    assert limiter.check(policy, a, call("time__convert_time"), now=0.0) is None
    assert limiter.check(policy, b, call("time__get_current_time"), now=0.0) is None


def test_denied_calls_are_not_counted(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy(POLICY)
    limiter = RateLimiter()
    a = who(policy, "a")
    for _ in range(3):  # denied by rule no-reset: never counted, never limited
        assert limiter.check(policy, a, call("git__git_reset"), now=0.0) is None
    stranger = who(policy, "stranger")  # default deny
    for _ in range(3):
        assert limiter.check(policy, stranger, call("time__x"), now=0.0) is None
    allowed = Decision("allow", ("x",), "")
    assert limiter.check(policy, a, call("git__git_reset"), now=0.0, decision=allowed) is None
    assert limiter.check(policy, a, call("git__git_reset"), now=0.0, decision=allowed) is not None


def test_forget_idle_drops_old_windows(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy(POLICY)
    limiter = RateLimiter()
    a = who(policy, "a")
    for _ in range(2):
        limiter.check(policy, a, call("time__x"), now=0.0)
    limiter.forget_idle(now=100.0, older_than_s=50.0)
    assert limiter.check(policy, a, call("time__x"), now=0.0) is None
