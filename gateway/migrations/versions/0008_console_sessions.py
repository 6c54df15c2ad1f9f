"""Web console sessions: a hashed cookie token per signed-in person, with its CSRF token.

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-02

Frozen: a revision never imports ``gateway.models``; the types are spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("last_seen_at", _UTC, nullable=False),
        sa.Column("expires_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_console_sessions_token_hash", "console_sessions", ["token_hash"], unique=True)
    op.create_index("ix_console_sessions_identity", "console_sessions", ["identity"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_console_sessions_identity", table_name="console_sessions")
    op.drop_index("ix_console_sessions_token_hash", table_name="console_sessions")
    op.drop_table("console_sessions")
