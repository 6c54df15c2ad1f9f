"""Audit events carry the risk classes of the called tool (``gateway.risk``), hashed from record version 2.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-02

Frozen: a revision never imports ``gateway.models``; the types are spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("risk", sa.String(length=128), server_default="", nullable=False))
    with op.batch_alter_table("audit_events") as batch:  # existing rows got ""; the writer always sets it
        batch.alter_column("risk", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("risk")
