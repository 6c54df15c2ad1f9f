"""Database fixtures for gateway tests: one test body, run on SQLite and on PostgreSQL.

``database_url`` is parametrized over both backends (test ids ``[sqlite]`` and
``[postgresql]``); ``engine`` is a migrated engine on it. ``sqlite_engine`` is a migrated
engine on the SQLite file ``sqlite_path`` alone, for tests that read the file itself. The PostgreSQL server is a
throwaway cluster started once per session (``initdb`` into a temporary directory,
``pg_ctl start`` on a free loopback port with its socket in that directory, run as the
``postgres`` user when the tests run as root) and stopped at the end. Each test gets a
fresh database cloned from a migrated template.

Missing PostgreSQL binaries FAIL the PostgreSQL tests, they are never skipped:
install them with ``apt-get install postgresql``.

Besides the database fixtures, only what several test modules share lives here: ``notes``, a
notes upstream process per module, and ``approvals_gateway``, which starts gateways on the
approval flow tests' policy (tests/gateway/approvals/harness.py).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.db import create_db_engine, migrate
from tests.gateway.approvals.harness import FAST, POLICY, StartGateway
from tests.gateway.harness import (
    Gateway,
    NotesUpstream,
    free_port,
    run_gateway,
    run_notes_upstream,
    upstreams_yaml,
)

BACKENDS = ("sqlite", "postgresql")
_TEMPLATE = "warden_template"


def _pg_bindir() -> Path:
    candidates = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: run `apt-get install postgresql` "
        "(the audit tests run on SQLite and PostgreSQL and are never skipped)",
        pytrace=False,
    )


@dataclass(frozen=True)
class PostgresServer:
    port: int
    admin_url: str

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(sql.encode())  # test-only DDL built from fixed names

    @contextlib.contextmanager
    def fresh_database(self, prefix: str = "warden_test") -> Iterator[str]:
        """A new database cloned from the migrated template: its URL; dropped afterwards."""
        name = f"{prefix}_{os.getpid()}_{next(_numbers)}"
        self.execute(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
        try:
            yield self.url(name)
        finally:
            with contextlib.suppress(Exception):  # a test that left a connection open must not fail here
                self.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for this test session, with a migrated template database."""
    bindir = _pg_bindir()
    root = Path(tempfile.mkdtemp(prefix="warden-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    port = free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}\n{server_log}", pytrace=False)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start")
    server = PostgresServer(port, f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
    try:
        server.execute(f"CREATE DATABASE {_TEMPLATE}")
        engine = create_db_engine(server.url(_TEMPLATE))
        migrate(engine)
        engine.dispose()
        yield server
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


_numbers = itertools.count()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warden.db'}"
        migrate(url)
        yield url
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.fresh_database() as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on ``database_url`` (already migrated)."""
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """Where ``sqlite_engine`` keeps its database file."""
    return tmp_path / "warden.db"


@pytest.fixture
def sqlite_engine(sqlite_path: Path) -> Iterator[Engine]:
    """A migrated engine on a fresh SQLite file (``sqlite_path``)."""
    engine = create_db_engine(f"sqlite:///{sqlite_path}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotesUpstream]:
    """The notes upstream (a Streamable HTTP MCP server), one process per test module."""
    with run_notes_upstream(tmp_path_factory.mktemp("notes")) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def approvals_gateway(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> StartGateway:
    """Starts gateways on the approvals policy in front of this module's ``notes`` upstream."""
    policy_dir = tmp_path_factory.mktemp("approval-policy")
    (policy_dir / "policy.yaml").write_text(POLICY)

    def start(identities: list[str], **env: str) -> AbstractContextManager[Gateway]:
        tmp = tmp_path_factory.mktemp("gw")
        return run_gateway(tmp, policy_dir, upstreams_yaml(notes.url), identities, **{**FAST, **env})

    return start
