"""Identities and their API keys.

Owns: minting API keys, checking a presented key, revoking and listing keys.

A key reads ``wdn_<prefix>_<secret>``: ``prefix`` is 8 characters of ``[a-z0-9]``
(stored, indexed, shown in listings), ``secret`` is 43 URL-safe characters
(256 random bits from ``secrets``). Only ``sha256(whole key)`` is stored; the
plaintext is returned once by ``create()`` and can never be shown again.
Authentication looks the row up by prefix and compares hashes with
``hmac.compare_digest``; malformed keys are refused before touching the database.

Verified keys are cached in process (``KeyCache``) for ``cache_ttl_s`` seconds, keyed by
the key's sha256 (the plaintext is never kept), so a request usually costs one hash and no
database round trip. Revocation: ``revoke()`` of this store drops the identity's cached
keys before it returns, so the very next request with such a key goes to the database
and is refused; a key revoked by another process (the CLI, another replica) is refused
once its cache entry expires, within ``cache_ttl_s``. A lookup that raced a revocation
never re-caches the revoked key (a generation counter). Unknown and revoked keys are
never cached: every such request is looked up.
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
import threading
import time
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class _Verified:
    name: str
    expires: float


class KeyCache:
    """Verified keys by sha256 for ``ttl_s`` seconds (0: nothing is cached), at most ``max_entries``.

    Thread-safe: the event loop reads it, lookups in worker threads fill it.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: dict[str, _Verified] = {}
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        """Changes on every revocation; a lookup started before one must not fill the cache."""
        return self._generation

    def get(self, digest: str) -> str | None:
        """The identity of a cached, unexpired key hash; None when it must be looked up."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return entry.name

    def put(self, digest: str, name: str, generation: int) -> None:
        if self._ttl_s <= 0:
            return
        with self._lock:
            if generation != self._generation:  # a revocation ran while this key was looked up
                return
            if len(self._entries) >= self._max:
                self._entries.clear()  # bounded memory; the next requests simply look up again
            self._entries[digest] = _Verified(name, time.monotonic() + self._ttl_s)

    def forget(self, name: str) -> None:
        """Drop every cached key of ``name`` (it was revoked)."""
        with self._lock:
            self._generation += 1
            for digest in [d for d, entry in self._entries.items() if entry.name == name]:
                del self._entries[digest]


class IdentityStore:
    """API keys in the ``identities`` table, verified keys cached for ``cache_ttl_s`` (see the module doc)."""

    def __init__(self, engine: Engine, cache_ttl_s: float = 0.0) -> None:
        self._engine = engine
        self._cache = KeyCache(cache_ttl_s)

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
        """The identity name owning ``key``, or None for a malformed, unknown or revoked key (blocking)."""
        cached = self.cached(key)
        if cached is not None:
            return cached
        generation = self._cache.generation
        found = self.key_of(key)
        if found is None:
            return None
        self._cache.put(hash_key(key), found.name, generation)
        return found.name

    def cached(self, key: str) -> str | None:
        """The identity of ``key`` if it was verified within the cache TTL, else None (look it up).

        Never blocks: one sha256, no database. Safe to call on the event loop.
        """
        return self._cache.get(hash_key(key))

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
        self._cache.forget(name)  # before the commit too: no request admitted from cache while it runs
        try:
            with self._engine.begin() as conn:
                return int(conn.execute(statement).rowcount)
        finally:
            self._cache.forget(name)  # and after: a lookup that read the row before the commit

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
