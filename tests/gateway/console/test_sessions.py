"""gateway/console/sessions.py on SQLite and PostgreSQL: hashed tokens, idle and absolute expiry,
sessions ending with their key, sign-out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from gateway.console.sessions import SessionStore
from gateway.identities import IdentityStore
from gateway.models import ConsoleSession, utcnow


def _signed_in(engine: Engine, idle_s: float = 60, max_s: float = 3600) -> tuple[SessionStore, str, IdentityStore]:
    identities = IdentityStore(engine)
    key, _ = identities.create("alice")
    assert key.id is not None
    store = SessionStore(engine, idle_s, max_s)
    _, token = store.open("alice", key.id)
    return store, token, identities


def test_a_token_finds_its_session_and_only_its_hash_is_stored(engine: Engine) -> None:
    store, token, _ = _signed_in(engine)
    found = store.find(token)
    assert found is not None and found.identity == "alice" and len(found.csrf_token) >= 32
    with Session(engine) as session:
        row = session.exec(select(ConsoleSession)).one()
    assert token not in row.token_hash and row.token_hash != token
    assert store.find(token + "x") is None and store.find("") is None


def test_an_idle_session_ends_and_an_active_one_slides(engine: Engine) -> None:
    store, token, _ = _signed_in(engine, idle_s=60)
    now = utcnow()
    assert store.find(token, now + timedelta(seconds=50)) is not None  # slides the window
    assert store.find(token, now + timedelta(seconds=100)) is not None  # 50 s after the last use
    assert store.find(token, now + timedelta(seconds=200)) is None  # idle 100 s > 60 s
    assert store.find(token, now + timedelta(seconds=201)) is None  # and it is gone for good


def test_polling_does_not_keep_a_session_alive(engine: Engine) -> None:
    store, token, _ = _signed_in(engine, idle_s=60)
    now = utcnow()
    for seconds in (20, 40, 55):
        assert store.find(token, now + timedelta(seconds=seconds), touch=False) is not None
    assert store.find(token, now + timedelta(seconds=70), touch=False) is None


def test_a_session_ends_at_its_absolute_expiry_however_active(engine: Engine) -> None:
    store, token, _ = _signed_in(engine, idle_s=60, max_s=120)
    now = utcnow()
    for seconds in (40, 80, 110):
        assert store.find(token, now + timedelta(seconds=seconds)) is not None
    assert store.find(token, now + timedelta(seconds=125)) is None


def test_revoking_the_key_ends_its_sessions(engine: Engine) -> None:
    store, token, identities = _signed_in(engine)
    assert identities.revoke("alice") == 1
    assert store.find(token) is None


def test_sign_out_deletes_the_session(engine: Engine) -> None:
    store, token, _ = _signed_in(engine)
    assert store.close(token) is True
    assert store.find(token) is None and store.close(token) is False


def test_prune_removes_stale_sessions_only(engine: Engine) -> None:
    store, token, identities = _signed_in(engine, idle_s=60)
    key, _ = identities.create("bob")
    assert key.id is not None
    _, fresh = store.open("bob", key.id)
    with Session(engine) as session:
        row = session.exec(select(ConsoleSession).where(ConsoleSession.identity == "alice")).one()
        row.last_seen_at = utcnow() - timedelta(seconds=600)
        session.add(row)
        session.commit()
    assert store.prune() == 1
    assert store.find(token) is None and store.find(fresh) is not None
