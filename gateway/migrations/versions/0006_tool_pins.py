"""Tool pins: every upstream tool definition seen, and which one agents may use; approvals bind one.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02

Frozen: a revision never imports ``gateway.models``; the types are spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)
_ACCEPTED = sa.text("state = 'accepted'")


def upgrade() -> None:
    op.create_table(
        "tool_pins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server", sa.String(length=128), nullable=False),
        sa.Column("tool", sa.String(length=256), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", _UTC, nullable=False),
        sa.Column("decided_at", _UTC, nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tool_pins_state", "tool_pins", ["state"])
    op.create_index("uq_tool_pins_definition", "tool_pins", ["server", "tool", "hash"], unique=True)
    op.create_index(
        "uq_tool_pins_accepted",
        "tool_pins",
        ["server", "tool"],
        unique=True,
        sqlite_where=_ACCEPTED,
        postgresql_where=_ACCEPTED,
    )
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("tool_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("tool_hash")
    op.drop_index("uq_tool_pins_accepted", table_name="tool_pins")
    op.drop_index("uq_tool_pins_definition", table_name="tool_pins")
    op.drop_index("ix_tool_pins_state", table_name="tool_pins")
    op.drop_table("tool_pins")
