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


def test_forget_idle_drops_only_windows_no_call_is_left_in(make_policy: Callable[[str], Policy]) -> None:
    policy = make_policy(POLICY)
    limiter = RateLimiter()
    a, b = who(policy, "a"), who(policy, "b")
    for _ in range(2):
        limiter.check(policy, a, call("time__x"), now=0.0)
    limiter.check(policy, b, call("time__x"), now=5.0)
    assert limiter.windows == 2
    assert limiter.forget_idle(now=9.9) == 0  # both still hold calls
    assert limiter.forget_idle(now=10.0) == 1 and limiter.windows == 1  # a's calls at 0.0 left its window
    assert limiter.check(policy, a, call("time__x"), now=10.0) is None
    assert limiter.forget_idle(now=100.0) == 2 and limiter.windows == 0


def test_a_caller_at_its_limit_is_not_reset_by_a_sweep(make_policy: Callable[[str], Policy]) -> None:
    """Attack shape: exhaust a long window, wait for sweeps, try again. A sweep never frees a budget."""
    policy = make_policy(POLICY.replace("limit: 2, window_s: 10", "limit: 2, window_s: 86400"))
    limiter = RateLimiter()
    a = who(policy, "a")
    for _ in range(2):
        assert limiter.check(policy, a, call("time__x"), now=0.0) is None
    for hour in range(1, 24):
        assert limiter.forget_idle(now=3600.0 * hour) == 0
        assert limiter.check(policy, a, call("time__x"), now=3600.0 * hour) is not None
    assert limiter.forget_idle(now=86400.0) == 1
    assert limiter.check(policy, a, call("time__x"), now=86400.0) is None
