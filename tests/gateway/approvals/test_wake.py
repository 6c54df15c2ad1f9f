"""Wakeups: held calls wake on a decision made in this process at once, and on PostgreSQL on a
decision committed by ANY process (LISTEN/NOTIFY, real server); a notification is only a hint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import psycopg
import pytest
from sqlalchemy import Engine, make_url

from gateway.approvals.store import ApprovalConflict, ApprovalStore
from gateway.approvals.wake import CHANNEL, Wakeups
from gateway.db import create_db_engine
from gateway.models import utcnow
from gateway.types import Decision, Identity, ToolCall
from tests.gateway.conftest import PostgresServer

pytestmark = pytest.mark.anyio

APPROVE = Decision("approve", ("approve-publish",), "publishing needs a human", approver_roles=("approver",))


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    with postgres_server.fresh_database("warden_wake") as url:
        yield url


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_db_engine(pg_url)
    yield engine
    engine.dispose()


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def pending(store: ApprovalStore, call_id: str = "c1") -> str:
    call = ToolCall("notes__add_note", "notes", "add_note", {"title": "publish x"}, call_id=call_id)
    return store.create(call, Identity("writer-agent"), APPROVE, {"title": "publish x"}, 600).id


@asynccontextmanager
async def listening(wakeups: Wakeups, url: str) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(wakeups.listen_forever, libpq(url), 0.05)
        with anyio.fail_after(10):
            await wakeups.until_listening()
        yield
        tg.cancel_scope.cancel()


async def test_wake_sets_the_event_taken_before_and_arms_a_fresh_one() -> None:
    wakeups = Wakeups()
    wakeups.enter("apr_1")
    before = wakeups.event("apr_1")
    wakeups.wake("apr_other")  # someone else's approval: nothing here
    assert not before.is_set()
    wakeups.wake("apr_1")
    assert before.is_set()
    assert not wakeups.event("apr_1").is_set()
    wakeups.leave("apr_1")
    assert wakeups.held == 0
    wakeups.wake("apr_1")  # nobody holds it any more: ignored


async def test_a_decision_committed_elsewhere_wakes_the_held_call(pg_url: str, pg_engine: Engine) -> None:
    """Replica B (its own engine) decides; replica A's event fires when B commits, without any polling."""
    approval_id = pending(ApprovalStore(pg_engine))
    other = create_db_engine(pg_url)
    wakeups = Wakeups()
    try:
        async with listening(wakeups, pg_url):
            wakeups.enter(approval_id)
            woken = wakeups.event(approval_id)
            ApprovalStore(other).decide(approval_id, "approve", "alice", "ok", utcnow())
            with anyio.fail_after(10):
                await woken.wait()
    finally:
        other.dispose()


async def test_a_decision_that_loses_its_race_notifies_nobody(pg_url: str, pg_engine: Engine) -> None:
    store = ApprovalStore(pg_engine)
    approval_id = pending(store)
    store.decide(approval_id, "deny", "alice", "no", utcnow())
    with psycopg.connect(libpq(pg_url), autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        with pytest.raises(ApprovalConflict, match="already denied"):
            store.decide(approval_id, "approve", "bob", "yes", utcnow())
        assert list(conn.notifies(timeout=0.5)) == []


async def test_a_forged_notification_only_makes_the_holder_re_read(pg_url: str, pg_engine: Engine) -> None:
    """Attack shape: anyone with database access can NOTIFY. The payload only wakes; the row decides."""
    store = ApprovalStore(pg_engine)
    approval_id = pending(store)
    wakeups = Wakeups()
    async with listening(wakeups, pg_url):
        wakeups.enter(approval_id)
        woken = wakeups.event(approval_id)
        with psycopg.connect(libpq(pg_url), autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, approval_id))
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "x" * 7000))  # junk payload: ignored
        with anyio.fail_after(10):
            await woken.wait()
    row = store.get(approval_id)
    assert row is not None and row.state == "pending"


async def test_the_listener_reconnects_and_wakes_everyone_to_re_read(
    pg_url: str, postgres_server: PostgresServer
) -> None:
    """Its connection killed, the listener says so (holders poll), reconnects, and wakes every holder once."""
    wakeups = Wakeups()
    async with listening(wakeups, pg_url):
        wakeups.enter("apr_x")
        woken = wakeups.event("apr_x")
        postgres_server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{make_url(pg_url).database}' AND query LIKE 'LISTEN {CHANNEL}%'"
        )
        with anyio.fail_after(10):
            await woken.wait()
            await wakeups.until_listening()
