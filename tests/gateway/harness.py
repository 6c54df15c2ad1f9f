"""Real processes for gateway tests: the gateway (`warden gateway serve`), a Streamable HTTP
upstream (tests/upstreams/notes_server.py) and, spawned by the gateway, the PyPI stdio
server `mcp-server-time`. Clients are the real `mcp` SDK client over Streamable HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from serving.ports import free_port

REPO = Path(__file__).resolve().parents[2]


FIXTURE_POLICY = Path(__file__).parent / "fixtures" / "policy.yaml"


def fixture_policy_dir(tmp: Path) -> Path:
    """A fresh copy of the tests' policy file in `tmp/policies` (tests may edit it: hot reload)."""
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    shutil.copy(FIXTURE_POLICY, policy_dir / "policy.yaml")
    return policy_dir


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class NotesUpstream:
    port: int
    header_log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def seen_headers(self) -> list[dict[str, str]]:
        import json

        if not self.header_log.exists():
            return []
        return [json.loads(line) for line in self.header_log.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def run_notes_upstream(tmp: Path) -> Iterator[NotesUpstream]:
    port = free_port()
    log = tmp / "notes-headers.jsonl"
    env = {**os.environ, "NOTES_HEADER_LOG": str(log)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.upstreams.notes_server", str(port)], cwd=REPO, env=env)
    try:
        wait_until(lambda: _port_open(port) or proc.poll() is not None, 30, "notes upstream to listen")
        assert proc.poll() is None, "notes upstream exited at start"
        yield NotesUpstream(port, log, proc)
    finally:
        proc.kill()
        proc.wait()


def upstreams_yaml(notes_url: str) -> str:
    return f"""
servers:
  time:
    command: {sys.executable}
    args: ["-m", "mcp_server_time", "--local-timezone", "UTC"]
  notes:
    url: {notes_url}
    headers_from_env:
      X-Upstream-Token: NOTES_UPSTREAM_TOKEN
"""


@dataclass
class Gateway:
    port: int
    database_url: str
    policy_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        """PIDs of processes the gateway spawned (its stdio upstreams)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def ready(self) -> dict[str, Any] | None:
        try:
            r = httpx.get(f"{self.url}/readyz", timeout=2)
        except httpx.HTTPError:
            return None
        body: dict[str, Any] = r.json()
        if body.get("upstreams_total") is not None and body["upstreams_ready"] == body["upstreams_total"]:
            return body
        return None


@contextlib.contextmanager
def run_gateway(
    tmp: Path,
    policy_dir: Path,
    upstreams: str,
    identities: list[str],
    database_url: str | None = None,
    **env_extra: str,
) -> Iterator[Gateway]:
    """A gateway process on ``database_url`` (default: a fresh SQLite file in ``tmp``)."""
    from gateway.db import create_db_engine, migrate
    from gateway.identities import IdentityStore

    database_url = database_url or f"sqlite:///{tmp / 'warden.db'}"
    engine = create_db_engine(database_url)
    migrate(engine)
    store = IdentityStore(engine)
    keys = {name: store.create(name)[1] for name in identities}
    engine.dispose()
    upstreams_file = tmp / "upstreams.yaml"
    upstreams_file.write_text(upstreams)
    port = free_port()
    log_path = tmp / "gateway.log"
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": database_url,
        "WARDEN_POLICY_DIR": str(policy_dir),
        "WARDEN_UPSTREAMS_FILE": str(upstreams_file),
        "WARDEN_PORT": str(port),
        "WARDEN_UPSTREAM_BACKOFF_INITIAL_S": "0.2",
        "WARDEN_UPSTREAM_BACKOFF_MAX_S": "1",
        "NOTES_UPSTREAM_TOKEN": "upstream-secret-123",
        # tests read upstream states and counters; tests/gateway/routes/test_health.py runs the defaults
        "WARDEN_HEALTH_DETAILS": "public",
        "WARDEN_METRICS_ACCESS": "public",
        **env_extra,
    }
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "warden", "gateway", "serve"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    gw = Gateway(port, database_url, policy_dir, proc, log_path, keys)
    try:
        wait_until(lambda: gw.ready() or proc.poll() is not None, 60, "gateway ready")
        assert proc.poll() is None, f"gateway exited at start:\n{gw.log()}"
        yield gw
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.asynccontextmanager
async def connect(
    gw: Gateway, identity: str | None, mode: str = "auto", key: str | None = None
) -> AsyncIterator[Client]:
    """A real MCP client session to the gateway, as `identity` (its key), in `mode`
    ("auto" negotiates 2026-07-28; "legacy" uses the 2025 initialize handshake)."""
    token = key if key is not None else (gw.keys[identity] if identity else None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(gw.mcp_url, http_client=http), mode=mode, cache=None) as client,
    ):
        yield client


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def metric(gw: Gateway, sample: str) -> float:
    """The value of one sample of the gateway's /metrics (``name{label="value"}``); 0 while it has none."""
    for line in httpx.get(f"{gw.url}/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def rows(gw: Gateway, sql: str, **params: object) -> list[dict[str, Any]]:
    """The rows of one SQL query on the gateway's database, as dicts."""
    from sqlalchemy import text

    from gateway.db import create_db_engine

    engine = create_db_engine(gw.database_url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()
