"""gateway/models.py: the tables, and their agreement with the migrations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from gateway.db import create_db_engine, migrate
from gateway.models import ApiKey, ApiKeyPublic, Approval


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def test_migrations_and_models_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_datetimes_are_stored_in_utc_and_read_back_aware(engine: Engine) -> None:
    paris = timezone(timedelta(hours=1))
    created = datetime(2026, 1, 2, 13, 4, 5, 123456, tzinfo=paris)
    with Session(engine) as session:
        session.add(ApiKey(name="alice", key_prefix="abcd1234", key_hash="0" * 64, created_at=created))
        session.commit()
    with Session(engine) as session:
        row = session.get(ApiKey, 1)
    assert row is not None
    assert row.created_at == created
    assert row.created_at.tzinfo is not None and row.created_at.utcoffset() == timedelta(0)
    assert row.created_at.hour == 12


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            Approval(
                id="apr_x",
                call_id="c",
                identity="i",
                server="s",
                tool="t",
                tool_name="s__t",
                arguments="{}",
                args_hash="",
                expires_at=datetime(2026, 1, 1),
            )
        )
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()


def test_public_key_schema_has_no_hash() -> None:
    assert "key_hash" not in ApiKeyPublic.model_fields
    public = ApiKey(name="a", key_prefix="p", key_hash="h" * 64, created_at=datetime.now(UTC)).public()
    assert "h" * 64 not in public.model_dump_json()


def test_approval_states_are_spelled_once_and_every_consumer_takes_them_from_models() -> None:
    from typing import get_args

    from gateway.cli.approvals import STATES
    from gateway.models import APPROVAL_STATES, Approval, ApprovalPublic
    from gateway.routes.approvals import StateFilter

    assert APPROVAL_STATES == ("pending", "approved", "denied", "expired", "consumed")
    assert (*APPROVAL_STATES, "all") == STATES
    assert {a for arg in get_args(StateFilter) for a in (get_args(arg) or (arg,))} == {*APPROVAL_STATES, "all"}
    assert Approval.model_fields["state"].annotation == ApprovalPublic.model_fields["state"].annotation
