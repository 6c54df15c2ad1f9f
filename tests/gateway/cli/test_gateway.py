"""`warden gateway serve --workers N`: several worker processes on one port, refused on SQLite
(their budgets and approvals would be per process), sharing one rate-limit budget on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.conftest import PostgresServer
from tests.gateway.harness import REPO, NotesUpstream, connect, rows, run_gateway, text_of
from tests.gateway.shared.test_replicas import notes_only

pytestmark = pytest.mark.anyio

POLICY = """
identities:
  loader: {grants: ["notes__echo"]}
rate_limits:
  - {id: rl-echo, tools: [notes__echo], limit: 5, window_s: 3600}
"""


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "policy.yaml").write_text(POLICY)
    return directory


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    with postgres_server.fresh_database("warden_workers") as url:
        yield url


def test_several_workers_on_sqlite_are_refused(tmp_path: Path, policy_dir: Path) -> None:
    upstreams = tmp_path / "upstreams.yaml"
    upstreams.write_text("servers: {}\n")
    env = {**os.environ, "WARDEN_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    args = ["--workers", "2", "--policy-dir", str(policy_dir), "--upstreams", str(upstreams)]
    done = subprocess.run(
        [sys.executable, "-m", "warden", "gateway", "serve", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "--workers above 1 needs a PostgreSQL database_url" in done.stderr


def spawned_workers(pids: list[int]) -> list[int]:
    """The children started by multiprocessing's spawn (uvicorn's workers)."""
    return [pid for pid in pids if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@pytest.mark.slow
async def test_two_workers_serve_one_port_and_share_one_budget(
    tmp_path: Path, policy_dir: Path, pg_url: str, notes: NotesUpstream
) -> None:
    with run_gateway(tmp_path, policy_dir, notes_only(notes.url), ["loader"], pg_url, WARDEN_WORKERS="2") as gw:
        assert len(spawned_workers(gw.children())) >= 2, gw.log()
        answers = []
        for n in range(12):  # a new connection each: the kernel spreads them over the workers
            async with connect(gw, "loader") as client:
                answers.append(await client.call_tool("notes__echo", {"text": f"w-{n}"}))
        ran = [a for a in answers if not a.is_error]
        limited = [a for a in answers if "rate limit rl-echo" in text_of(a)]
        assert 0 < len(ran) <= 5 and limited, [text_of(a) for a in answers]
        assert rows(gw, "SELECT count(*) AS n FROM ratelimit_hits")[0]["n"] == 5
        started = [line for line in gw.log().splitlines() if "Started server process" in line]
        assert len(started) >= 2, gw.log()  # each worker ran its own lifespan
