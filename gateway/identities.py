"""Identities and their API keys.

Owns: minting API keys, checking a presented key, revoking and listing keys.

A key reads ``wdn_<prefix>_<secret>``: ``prefix`` is 8 characters of ``[a-z0-9]``
(stored, indexed, shown in listings), ``secret`` is 43 URL-safe characters
(256 random bits from ``secrets``). Only ``sha256(whole key)`` is stored; the
plaintext is returned once by ``create()`` and can never be shown again.
Authentication looks the row up by prefix and compares hashes with
``hmac.compare_digest``; malformed keys are refused before touching the database.
An identity may have several keys over time, at most one active (a partial unique
index enforces it).

Methods are synchronous and short; async callers run them with
``anyio.to_thread.run_sync``.

Must never: store or log a plaintext key; return a key hash; decide what an
identity may do (policy does; roles come from the policy files).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import string

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.models import ApiKey, ApiKeyPublic, utcnow

KEY_PATTERN = re.compile(r"wdn_([a-z0-9]{8})_[A-Za-z0-9_-]{43}")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid identity name, else raise ``ValueError`` saying why."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid identity name {name!r}: use 1-64 characters of a-z, 0-9, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> tuple[str, str]:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    return prefix, f"wdn_{prefix}_{secrets.token_urlsafe(32)}"


class IdentityStore:
    """API keys in the ``identities`` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, name: str) -> tuple[ApiKeyPublic, str]:
        """Mint a key for ``name``; return it with the plaintext key, which is shown once.

        Raises ``ValueError`` for an invalid name or when ``name`` already has an active key.
        """
        validate_name(name)
        for _ in range(5):  # retried only on the (astronomically rare) prefix collision
            prefix, key = _new_key()
            row = ApiKey(name=name, key_prefix=prefix, key_hash=hash_key(key))
            with Session(self._engine, expire_on_commit=False) as session:
                if self._active(session, name) is not None:
                    raise ValueError(f"identity {name!r} already has an active key; revoke it first")
                session.add(row)
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    if self._active(session, name) is not None:
                        raise ValueError(f"identity {name!r} already has an active key; revoke it first") from None
                    continue
                return row.public(), key
        raise RuntimeError("could not mint a unique key prefix")

    def authenticate(self, key: str) -> str | None:
        """The identity name owning ``key``, or None for a malformed, unknown or revoked key."""
        found = self.key_of(key)
        return found.name if found is not None else None

    def key_of(self, key: str) -> ApiKeyPublic | None:
        """The active key row ``key`` is, or None for a malformed, unknown or revoked key."""
        match = KEY_PATTERN.fullmatch(key)
        if match is None:
            return None
        with Session(self._engine) as session:
            row = session.exec(select(ApiKey).where(ApiKey.key_prefix == match.group(1))).first()
        stored = row.key_hash if row is not None else _DUMMY_HASH
        if not hmac.compare_digest(hash_key(key), stored) or row is None or row.revoked_at is not None:
            return None
        return row.public()

    def is_active(self, name: str, key_prefix: str | None) -> bool:
        """Whether ``name``'s key with ``key_prefix`` is still unrevoked (any active key of ``name`` if None).

        Re-authenticates a call that waited (held for approval) after its key was checked.
        """
        query = select(ApiKey).where(ApiKey.name == name, col(ApiKey.revoked_at).is_(None))
        if key_prefix is not None:
            query = query.where(ApiKey.key_prefix == key_prefix)
        with Session(self._engine) as session:
            return session.exec(query).first() is not None

    def revoke(self, name: str) -> int:
        """Revoke every active key of ``name``; return how many were revoked."""
        validate_name(name)
        statement = (
            update(ApiKey).where(col(ApiKey.name) == name, col(ApiKey.revoked_at).is_(None)).values(revoked_at=utcnow())
        )
        with self._engine.begin() as conn:
            return conn.execute(statement).rowcount

    def list(self, include_revoked: bool = False) -> builtins.list[ApiKeyPublic]:
        """Keys ordered by creation; only active ones unless ``include_revoked``."""
        query = select(ApiKey).order_by(col(ApiKey.created_at), col(ApiKey.id))
        if not include_revoked:
            query = query.where(col(ApiKey.revoked_at).is_(None))
        with Session(self._engine) as session:
            return [row.public() for row in session.exec(query)]

    @staticmethod
    def _active(session: Session, name: str) -> ApiKey | None:
        query = select(ApiKey).where(ApiKey.name == name, col(ApiKey.revoked_at).is_(None))
        return session.exec(query).first()
