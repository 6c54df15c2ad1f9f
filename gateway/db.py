"""Database engines and schema migrations.

Owns: building a SQLAlchemy engine from a URL with the connection settings the
gateway relies on, and upgrading a database to the newest Alembic revision.

SQLite connections get WAL (readers never block the writer), ``synchronous=FULL``
(a committed transaction survives SIGKILL and power loss), a busy timeout (waiting
writers queue instead of failing) and foreign keys. PostgreSQL URLs are sent to the
psycopg (v3) driver. On PostgreSQL ``migrate`` holds an advisory lock while it upgrades, so
several gateway processes starting at once (workers, replicas) migrate one after another.

Must never: create an engine, open a connection or run a migration at import time;
define tables (``models.py`` does) or write rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another writer's lock before failing."""

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATE_LOCK = 0x5741_5244_454E_0001
"""PostgreSQL advisory lock key held while migrating ("WARDEN" + 1)."""


def create_db_engine(url: str) -> Engine:
    """Build an engine for ``url``; SQLite connections are configured for durability."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that needs no ``alembic.ini``: scripts come from the installed package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    config.attributes["engine"] = engine
    return config


def migrate(url_or_engine: str | Engine) -> None:
    """Upgrade the database to the newest revision (``alembic upgrade head``)."""
    engine = create_db_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        if engine.dialect.name != "postgresql":
            command.upgrade(alembic_config(engine), "head")
            return
        with engine.connect() as lock:  # a session lock on its own connection, released before it is pooled
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATE_LOCK})
            try:
                command.upgrade(alembic_config(engine), "head")
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATE_LOCK})
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()
