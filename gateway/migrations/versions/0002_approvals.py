"""Approvals decided, granted and consumed: scope, scope_ttl_s, valid_until, consumed_at.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Frozen: a revision never imports ``gateway.models``; the types are spelled out so
that later model changes cannot rewrite history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=16), nullable=False, server_default="exact"))
        batch.add_column(sa.Column("scope_ttl_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("valid_until", _UTC, nullable=True))
        batch.add_column(sa.Column("consumed_at", _UTC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("consumed_at")
        batch.drop_column("valid_until")
        batch.drop_column("scope_ttl_s")
        batch.drop_column("scope")
