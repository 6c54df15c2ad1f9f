"""gateway/identities.py: minting, checking and revoking API keys."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.identities import KEY_PATTERN, IdentityStore, KeyCache, hash_key


@pytest.fixture
def store(sqlite_engine: Engine) -> IdentityStore:
    return IdentityStore(sqlite_engine)


def test_created_key_has_the_documented_format_and_authenticates(store: IdentityStore) -> None:
    public, key = store.create("reader-agent")
    match = KEY_PATTERN.fullmatch(key)
    assert match is not None and len(key) == 4 + 8 + 1 + 43
    assert public.name == "reader-agent"
    assert public.key_prefix == match.group(1)
    assert public.revoked_at is None and public.created_at.tzinfo is not None
    assert store.authenticate(key) == "reader-agent"


def test_only_the_hash_of_a_key_is_stored(store: IdentityStore, sqlite_path: Path) -> None:
    _, key = store.create("alice")
    raw = sqlite3.connect(sqlite_path)
    dump = "\n".join(raw.iterdump())
    raw.close()
    assert key not in dump
    assert key[13:] not in dump  # the secret part
    assert hash_key(key) in dump


def test_a_wrong_secret_with_a_real_prefix_fails(store: IdentityStore) -> None:
    _, key = store.create("alice")
    forged = key[:13] + ("A" if key[13] != "A" else "B") + key[14:]
    assert store.authenticate(forged) is None


@pytest.mark.parametrize(
    "key",
    [
        "",
        "wdn_",
        "Bearer wdn_abcdefgh_" + "a" * 43,
        "wdn_abcdefgh_" + "a" * 42,
        "wdn_abcdefgh_" + "a" * 44,
        "wdn_ABCDEFGH_" + "a" * 43,
        "xyz_abcdefgh_" + "a" * 43,
        "wdn_abcdefgh_" + "a" * 42 + "!",
        "wdn_abcdefgh_" + "a" * 42 + "é",
        " wdn_abcdefgh_" + "a" * 43,
    ],
)
def test_malformed_keys_fail(store: IdentityStore, key: str) -> None:
    assert store.authenticate(key) is None


def test_an_unknown_well_formed_key_fails(store: IdentityStore) -> None:
    assert store.authenticate("wdn_abcdefgh_" + "a" * 43) is None


def test_revoked_keys_fail_and_a_new_key_can_follow(store: IdentityStore) -> None:
    _, old = store.create("alice")
    assert store.revoke("alice") == 1
    assert store.authenticate(old) is None
    assert store.revoke("alice") == 0
    _, new = store.create("alice")
    assert store.authenticate(new) == "alice"
    assert store.authenticate(old) is None


def test_one_active_key_per_identity(store: IdentityStore) -> None:
    store.create("alice")
    with pytest.raises(ValueError, match="already has an active key"):
        store.create("alice")


@pytest.mark.parametrize("name", ["", "Alice", "-lead", ".hidden", "a b", "a/b", "é", "a" * 65])
def test_invalid_names_are_refused_with_a_clear_error(store: IdentityStore, name: str) -> None:
    with pytest.raises(ValueError, match="invalid identity name"):
        store.create(name)
    with pytest.raises(ValueError, match="invalid identity name"):
        store.revoke(name)


@pytest.mark.parametrize("name", ["a", "reader-agent", "ops.bot_2", "9" * 64])
def test_valid_names_are_accepted(store: IdentityStore, name: str) -> None:
    public, _ = store.create(name)
    assert public.name == name


def test_list_shows_active_keys_unless_asked_for_all(store: IdentityStore) -> None:
    store.create("alice")
    store.create("bob")
    store.revoke("alice")
    store.create("alice")
    assert [(k.name, k.revoked_at is None) for k in store.list()] == [("bob", True), ("alice", True)]
    everything = store.list(include_revoked=True)
    assert [(k.name, k.revoked_at is None) for k in everything] == [("alice", False), ("bob", True), ("alice", True)]
    assert all(not hasattr(k, "key_hash") for k in everything)


def test_a_lookup_that_raced_a_revocation_does_not_cache_the_key() -> None:
    cache = KeyCache(ttl_s=3600)
    generation = cache.generation  # a lookup starts, reads the key's row as active ...
    cache.forget("alice")  # ... while the key is revoked
    cache.put("digest", "alice", generation)
    assert cache.get("digest") is None
    cache.put("digest", "alice", cache.generation)
    assert cache.get("digest") == "alice"


def test_cached_keys_expire_and_the_cache_stays_bounded() -> None:
    cache = KeyCache(ttl_s=0.0)
    cache.put("digest", "alice", cache.generation)
    assert cache.get("digest") is None  # ttl 0: nothing is cached
    cache = KeyCache(ttl_s=3600, max_entries=2)
    for n in range(5):
        cache.put(f"d{n}", "alice", cache.generation)
    assert len(cache._entries) <= 2 and cache.get("d4") == "alice"


def test_revoke_drops_cached_keys_at_once(sqlite_engine: Engine) -> None:
    store = IdentityStore(sqlite_engine, cache_ttl_s=3600)
    _, key = store.create("alice")
    assert store.authenticate(key) == "alice" and store.cached(key) == "alice"
    other = IdentityStore(sqlite_engine)  # another process's store: this one's cache still says alice
    assert other.revoke("alice") == 1
    assert store.cached(key) == "alice"
    _, again = store.create("bob")
    assert store.authenticate(again) == "bob"
    assert store.revoke("bob") == 1
    assert store.cached(again) is None and store.authenticate(again) is None
