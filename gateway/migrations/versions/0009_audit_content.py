"""Audit events carry the size and sha256 of returned contents (resource reads, prompt gets,
completions), never the contents; hashed from record version 3.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Frozen: a revision never imports ``gateway.models``; the types are spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("content_bytes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("content_sha256", sa.String(length=64), server_default="", nullable=False))
    with op.batch_alter_table("audit_events") as batch:  # existing rows got ""; the writer always sets it
        batch.alter_column("content_sha256", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("content_sha256")
        batch.drop_column("content_bytes")
