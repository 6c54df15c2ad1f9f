"""gateway/auth.py: the bearer-key middleware on the real app (in-process), with its key cache.

A verified key is answered from the in-process cache (no database lookup, no worker thread);
a key revoked by the gateway's own store is refused on the very next request; one revoked by
another process (the CLI) is refused within ``auth_cache_ttl_s``; forged and unknown keys are
never admitted, however often they are tried."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.config import Settings
from gateway.db import create_db_engine
from gateway.identities import IdentityStore, hash_key
from tests.gateway.approvals.harness import eventually
from tests.gateway.harness import FIXTURE_POLICY

pytestmark = pytest.mark.anyio

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
HEADERS = {
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/list",
    "Accept": "application/json, text/event-stream",
}


@asynccontextmanager
async def gateway(tmp_path: Path, ttl_s: float) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    upstreams = tmp_path / "upstreams.yaml"
    upstreams.write_text("servers: {}\n")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'w.db'}",
        policy_dir=FIXTURE_POLICY.parent,
        upstreams_file=upstreams,
        policy_reload=False,
        auth_cache_ttl_s=ttl_s,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield app, http


async def list_tools(http: httpx.AsyncClient, key: str) -> int:
    answer = await http.post("/mcp", json=LIST, headers={**HEADERS, "Authorization": f"Bearer {key}"})
    return answer.status_code


async def test_a_key_revoked_in_process_is_refused_on_the_very_next_call(tmp_path: Path) -> None:
    async with gateway(tmp_path, ttl_s=3600) as (app, http):
        store: IdentityStore = app.state.gateway.identities
        _, key = store.create("reader-agent")
        assert await list_tools(http, key) == 200
        assert store.cached(key) == "reader-agent"  # verified once, then answered from the cache
        assert await list_tools(http, key) == 200
        assert store.revoke("reader-agent") == 1
        assert store.cached(key) is None
        assert await list_tools(http, key) == 401


async def test_a_key_revoked_by_another_process_is_refused_within_the_ttl(tmp_path: Path) -> None:
    ttl_s = 0.5
    async with gateway(tmp_path, ttl_s=ttl_s) as (_app, http):
        cli = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")  # what `warden identity revoke` opens
        _, key = IdentityStore(cli).create("reader-agent")
        assert await list_tools(http, key) == 200
        revoked_at = time.monotonic()
        assert IdentityStore(cli).revoke("reader-agent") == 1
        cli.dispose()

        async def refused() -> float | None:
            return time.monotonic() - revoked_at if await list_tools(http, key) == 401 else None

        took = await eventually(refused, 10, "the revoked key to be refused")
        assert took < ttl_s + 2  # bounded by the TTL (plus this loaded machine's slack)
        assert await list_tools(http, key) == 401  # and stays refused: revoked keys are never cached


async def test_forged_keys_are_never_admitted_or_cached(tmp_path: Path) -> None:
    async with gateway(tmp_path, ttl_s=3600) as (app, http):
        store: IdentityStore = app.state.gateway.identities
        _, key = store.create("reader-agent")
        assert await list_tools(http, key) == 200
        prefix = key.split("_")[1]
        forged = f"wdn_{prefix}_{'A' * 43}"  # the real prefix, another secret
        for attempt in (forged, forged, key + "x", key.upper(), "wdn_" + "a" * 8 + "_" + "b" * 43):
            assert await list_tools(http, attempt) == 401
            assert store.cached(attempt) is None
        assert await list_tools(http, key) == 200


async def test_the_cache_keeps_only_key_hashes(tmp_path: Path) -> None:
    async with gateway(tmp_path, ttl_s=3600) as (app, http):
        store: IdentityStore = app.state.gateway.identities
        _, key = store.create("reader-agent")
        assert await list_tools(http, key) == 200
        entries = store._cache._entries
        assert list(entries) == [hash_key(key)]
        assert key not in repr(entries) and key.split("_")[2] not in repr(entries)
