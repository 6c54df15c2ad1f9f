"""Console sessions: a person's API key exchanged once for a session token, kept server-side.

Owns: the ``console_sessions`` rows. ``open`` mints a 256-bit random token (returned once,
for the cookie) and a CSRF token; only ``sha256(token)`` is stored. ``find`` returns the
live session of a token and slides its idle window; a session is dead once idle longer
than ``idle_s``, past its absolute ``expires_at``, or when the API key it was opened with is
revoked (the lookup joins the key row). ``close`` deletes the row (sign-out).

Methods are synchronous and short; async callers run them with ``anyio.to_thread.run_sync``.

Must never: store or log a plaintext session token; accept a key (``IdentityStore`` checks
keys); decide what a person may do (the policy's roles do).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, or_, update
from sqlmodel import Session, col, select

from gateway.models import ApiKey, ConsoleSession, utcnow

TOUCH_EVERY_S = 30.0
"""The idle window slides at most this often, so a polling page does not write every request."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live console session: who, and the CSRF token their forms must echo."""

    id: int
    identity: str
    csrf_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, engine: Engine, idle_s: float, max_s: float) -> None:
        self._engine = engine
        self.idle_s = idle_s
        self.max_s = max_s

    def open(self, identity: str, key_id: int) -> tuple[SignedIn, str]:
        """A new session for ``identity``; returns it with the token (shown once: the cookie)."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        row = ConsoleSession(
            token_hash=_hash(token),
            identity=identity,
            key_id=key_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=self.max_s),
        )
        with Session(self._engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        assert row.id is not None
        return SignedIn(row.id, identity, row.csrf_token), token

    def find(self, token: str, now: datetime | None = None, touch: bool = True) -> SignedIn | None:
        """The live session of ``token``; None when unknown, idle, expired or revoked.

        ``touch`` slides the idle window: a person acted. A page polling by itself passes False,
        so an open tab left alone still goes idle.
        """
        now = now or utcnow()
        query = (
            select(ConsoleSession, ApiKey.revoked_at)
            .join(ApiKey, col(ApiKey.id) == col(ConsoleSession.key_id))
            .where(ConsoleSession.token_hash == _hash(token))
        )
        with Session(self._engine) as session:
            found = session.exec(query).first()
            if found is None:
                return None
            row, revoked_at = found
            idle = (now - row.last_seen_at).total_seconds()
            if revoked_at is not None or idle > self.idle_s or now >= row.expires_at:
                session.exec(delete(ConsoleSession).where(col(ConsoleSession.id) == row.id))
                session.commit()
                return None
            if touch and idle > min(TOUCH_EVERY_S, self.idle_s / 4):
                session.exec(update(ConsoleSession).where(col(ConsoleSession.id) == row.id).values(last_seen_at=now))
                session.commit()
            assert row.id is not None
            return SignedIn(row.id, row.identity, row.csrf_token)

    def close(self, token: str) -> bool:
        """End the session of ``token`` (sign-out); True when there was one."""
        with self._engine.begin() as conn:
            done = conn.execute(delete(ConsoleSession).where(col(ConsoleSession.token_hash) == _hash(token)))
        return done.rowcount > 0

    def prune(self, now: datetime | None = None) -> int:
        """Delete sessions that are idle or expired; returns how many."""
        now = now or utcnow()
        stale = or_(
            col(ConsoleSession.last_seen_at) < now - timedelta(seconds=self.idle_s),
            col(ConsoleSession.expires_at) <= now,
        )
        with self._engine.begin() as conn:
            return conn.execute(delete(ConsoleSession).where(stale)).rowcount
