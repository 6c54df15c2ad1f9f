"""Rate-limit hits shared by every replica: a sliding log per (limit, identity, tool).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Frozen: a revision never imports ``gateway.models``; the types are spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ratelimit_hits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("limit_id", sa.String(length=128), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=256), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ratelimit_hits_window", "ratelimit_hits", ["limit_id", "identity", "tool", "at"])
    op.create_index("ix_ratelimit_hits_expires_at", "ratelimit_hits", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ratelimit_hits_expires_at", table_name="ratelimit_hits")
    op.drop_index("ix_ratelimit_hits_window", table_name="ratelimit_hits")
    op.drop_table("ratelimit_hits")
