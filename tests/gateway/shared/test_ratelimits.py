"""SharedRateLimiter on a real PostgreSQL: one budget for every replica, sliding on the database's clock,
counted atomically when replicas race, and failing closed when the database cannot answer."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text

from gateway.app import create_app
from gateway.config import Settings
from gateway.db import create_db_engine, migrate
from gateway.policy import Policy, RateLimitStoreError
from gateway.shared.ratelimits import SharedRateLimiter
from gateway.types import Caller, Decision
from tests.gateway.conftest import PostgresServer
from tests.gateway.harness import text_of
from tests.gateway.policy.conftest import call, make_policy, who

POLICY = """
identities:
  a: {grants: ["time__*"]}
  b: {grants: ["time__*"]}
rules:
  - {id: no-convert, effect: deny, tools: [time__convert_time], identities: [b]}
rate_limits:
  - {id: rl-time, tools: ["time__*"], limit: 3, window_s: 3600}
  - {id: rl-convert, tools: [time__convert_time], limit: 1, window_s: 3600}
"""
ALLOWED = Decision("allow", ("grant",), "")
__all__ = ["make_policy"]  # a fixture, used by name


@pytest.fixture
def pg(postgres_server: PostgresServer) -> Iterator[str]:
    with postgres_server.fresh_database("warden_shared_rl") as url:
        yield url


@pytest.fixture
def replicas(pg: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database: what two gateway replicas hold."""
    migrate(pg)
    first, second = create_db_engine(pg), create_db_engine(pg)
    yield first, second
    first.dispose()
    second.dispose()


def hits(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT limit_id, identity, tool FROM ratelimit_hits ORDER BY id"))]


def test_two_replicas_share_one_budget(make_policy: Callable[[str], Policy], replicas: tuple[Engine, Engine]) -> None:
    policy = make_policy(POLICY)
    one, two = (SharedRateLimiter(e) for e in replicas)
    a, now_call = who(policy, "a"), call("time__get_current_time")
    assert one.check(policy, a, now_call, decision=ALLOWED) is None
    assert two.check(policy, a, now_call, decision=ALLOWED) is None
    assert one.check(policy, a, now_call, decision=ALLOWED) is None
    denied = two.check(policy, a, now_call, decision=ALLOWED)
    assert denied == Decision("deny", ("rl-time",), "rate limit rl-time: 3 calls per 3600s for time__get_current_time")
    assert one.check(policy, a, now_call, decision=ALLOWED) is not None
    assert one.check(policy, who(policy, "b"), now_call, decision=ALLOWED) is None  # per identity
    assert len(hits(replicas[0])) == 4  # the refused calls were not counted


def test_racing_replicas_never_exceed_the_limit(
    make_policy: Callable[[str], Policy], replicas: tuple[Engine, Engine]
) -> None:
    """Attack shape: 40 simultaneous calls split over two replicas for 3 slots. Exactly 3 get through."""
    policy = make_policy(POLICY)
    limiters = [SharedRateLimiter(e) for e in replicas]
    a, now_call = who(policy, "a"), call("time__get_current_time")
    start, results, lock = threading.Barrier(8), [], threading.Lock()

    def race(limiter: SharedRateLimiter) -> None:
        start.wait(10)
        for _ in range(5):
            verdict = limiter.check(policy, a, now_call, decision=ALLOWED)
            with lock:
                results.append(verdict)

    threads = [threading.Thread(target=race, args=(limiters[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 40
    assert sum(1 for r in results if r is None) == 3
    assert len(hits(replicas[0])) == 3


def test_a_call_counts_against_every_limit_or_none(
    make_policy: Callable[[str], Policy], replicas: tuple[Engine, Engine]
) -> None:
    policy = make_policy(POLICY)
    limiter = SharedRateLimiter(replicas[0])
    a = who(policy, "a")
    assert limiter.check(policy, a, call("time__convert_time"), decision=ALLOWED) is None
    refused = limiter.check(policy, a, call("time__convert_time"), decision=ALLOWED)
    assert refused is not None and refused.rule_ids == ("rl-convert",)
    assert hits(replicas[0]) == [("rl-convert", "a", "time__convert_time"), ("rl-time", "a", "time__convert_time")]


def test_denied_calls_use_no_budget(make_policy: Callable[[str], Policy], replicas: tuple[Engine, Engine]) -> None:
    policy = make_policy(POLICY)
    limiter = SharedRateLimiter(replicas[0])
    b = who(policy, "b")
    for _ in range(3):  # denied by rule no-convert, decided here from the policy
        assert limiter.check(policy, b, call("time__convert_time")) is None
    assert limiter.check(policy, who(policy, "stranger"), call("time__x")) is None  # default deny
    assert hits(replicas[0]) == []


def test_the_window_slides_on_the_database_clock(
    make_policy: Callable[[str], Policy], replicas: tuple[Engine, Engine]
) -> None:
    """Hits older than the window stop counting, and the sweep deletes hits past their expiry only."""
    policy = make_policy(POLICY)
    limiter = SharedRateLimiter(replicas[0])
    a, now_call = who(policy, "a"), call("time__get_current_time")
    with replicas[0].begin() as conn:  # three hits an hour and a second ago, one still-live hit of another window
        conn.execute(
            text(
                "INSERT INTO ratelimit_hits (limit_id, identity, tool, at, expires_at) "
                "SELECT 'rl-time', 'a', 'time__get_current_time', t - 3601, t - 1 "
                "FROM (SELECT CAST(extract(epoch FROM clock_timestamp()) AS float8) AS t) now, generate_series(1, 3)"
            )
        )
    for _ in range(3):
        assert limiter.check(policy, a, now_call, decision=ALLOWED) is None
    assert limiter.check(policy, a, now_call, decision=ALLOWED) is not None
    assert limiter.forget_idle() == 3
    assert len(hits(replicas[0])) == 3
    assert limiter.check(policy, a, now_call, decision=ALLOWED) is not None  # a sweep never frees a live budget


def test_an_unreachable_database_fails_closed(
    make_policy: Callable[[str], Policy], postgres_server: PostgresServer, pg: str
) -> None:
    policy = make_policy(POLICY)
    engine = create_db_engine(pg)
    postgres_server.execute(f"DROP DATABASE {make_url(pg).database} WITH (FORCE)")
    try:
        with pytest.raises(RateLimitStoreError):
            SharedRateLimiter(engine).check(policy, who(policy, "a"), call("time__x"), decision=ALLOWED)
    finally:
        engine.dispose()


def test_sqlite_is_refused(make_policy: Callable[[str], Policy], sqlite_engine: Engine) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        SharedRateLimiter(sqlite_engine)


@pytest.mark.anyio
async def test_the_gateway_denies_when_the_shared_counters_cannot_answer(tmp_path: Path, pg: str) -> None:
    """The real app on PostgreSQL: counters gone, the limited call is refused (fail closed) and counted."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "policy.yaml").write_text(POLICY)
    (tmp_path / "upstreams.yaml").write_text(
        f'servers:\n  time:\n    command: {sys.executable}\n    args: ["-m", "mcp_server_time"]\n'
    )
    settings = Settings(
        database_url=pg,
        policy_dir=tmp_path / "policies",
        upstreams_file=tmp_path / "upstreams.yaml",
        policy_reload=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.gateway
        assert isinstance(state.proxy.limiter, SharedRateLimiter)
        ran = await state.proxy.call(Caller("a"), "time__get_current_time", {"timezone": "UTC"})
        assert not ran.is_error
        with state.engine.begin() as conn:
            conn.execute(text("DROP TABLE ratelimit_hits"))
        refused = await state.proxy.call(Caller("a"), "time__get_current_time", {"timezone": "UTC"})
        assert refused.is_error and "fails closed" in text_of(refused)
        assert "ratelimit_hits" not in text_of(refused)  # never exception text
        assert state.metrics.registry.get_sample_value("warden_fail_closed_total", {"reason": "ratelimit"}) == 1
