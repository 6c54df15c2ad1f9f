"""Alembic environment of the gateway database.

Owns: running migrations against the engine handed in by ``gateway.db.migrate``
(``config.attributes["engine"]``), or against ``sqlalchemy.url`` when Alembic is run
from the command line with an ini file.

Must never: define tables (``gateway/models.py`` does) or touch data outside a
revision script.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine
from sqlmodel import SQLModel

from gateway import models  # noqa: F401  (register the tables on SQLModel.metadata)
from gateway.db import create_db_engine

target_metadata = SQLModel.metadata


def run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    given: Engine | None = context.config.attributes.get("engine")
    engine = given if given is not None else create_db_engine(str(context.config.get_main_option("sqlalchemy.url")))
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if given is None:
            engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
