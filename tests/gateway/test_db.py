"""gateway/db.py: durable SQLite engines and programmatic migrations."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from gateway.db import alembic_config, create_db_engine, migrate
from tests.gateway.conftest import PostgresServer


def test_sqlite_connections_are_durable_wal(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert (conn.execute(text("PRAGMA busy_timeout")).scalar() or 0) >= 1000
    engine.dispose()


def test_migrate_creates_the_schema_on_a_fresh_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate(url)
    engine = create_db_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert {"identities", "audit_events", "approvals", "alembic_version"} <= tables
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    engine.dispose()


def test_migrate_is_idempotent_and_accepts_an_engine(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_migrate_works_from_another_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini here: the scripts come from the package
    migrate("sqlite:///relative.db")
    assert (tmp_path / "relative.db").exists()


def test_the_initial_revision_downgrades_cleanly(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrate(engine)
    assert {"identities", "audit_events", "approvals"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_processes_migrating_one_postgresql_database_at_once_take_turns(postgres_server: PostgresServer) -> None:
    """Workers and replicas start together: four migrations of one EMPTY database race, all succeed, once."""
    name = "warden_migrate_race"
    postgres_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    postgres_server.execute(f"CREATE DATABASE {name}")
    url = postgres_server.url(name)
    start, failures = threading.Barrier(4), []

    def race() -> None:
        start.wait(10)
        try:
            migrate(url)
        except Exception as exc:  # collected: the assertion below names it
            failures.append(exc)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert failures == []
        engine = create_db_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            assert conn.execute(text(locks)).scalar() == 0  # released, not left on a pooled connection
        engine.dispose()
    finally:
        postgres_server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_revision_0011_makes_existing_approvals_tool_calls(tmp_path: Path) -> None:
    """Rows from before the kind column become ``tool`` (gateway/migrations/versions/0011_approval_kind.py)."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")
    config = alembic_config(engine)
    command.upgrade(config, "0010")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO approvals (id, call_id, identity, server, tool, tool_name, arguments, args_hash,"
                " rule_ids, reason, approver_roles, state, created_at, expires_at, scope)"
                " VALUES ('apr_old000000000', 'c1', 'a', 'notes', 'add_note', 'notes__add_note', '{}', 'h',"
                " '[]', '', '[]', 'pending', '2026-12-01 00:00:00', '2026-12-01 00:10:00', 'exact')"
            )
        )
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM approvals")).scalars().all() == ["tool"]
    command.downgrade(config, "0010")
    assert "kind" not in {c["name"] for c in inspect(engine).get_columns("approvals")}
    engine.dispose()
