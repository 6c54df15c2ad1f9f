"""Audit for auditors: signed checkpoints, and indexes for the audit query filters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

``audit_checkpoints`` holds the writer's signed checkpoints and the prune anchors.
``audit_events`` gets one (column, seq) index per equality filter, so a filtered page
is read in seq order without sorting, (identity, ts) for an identity over a time range,
and an index on ``approval_id`` for the trail.

Frozen: a revision never imports ``gateway.models``; the types are spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_FILTERED = ("identity", "server", "tool", "effect", "outcome")


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("seq", _SEQ, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("prev_seq", _SEQ, nullable=False),
        sa.Column("ts", _UTC, nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_checkpoints_seq", "audit_checkpoints", ["seq"], unique=False)
    op.create_index("uq_audit_checkpoints_kind_seq", "audit_checkpoints", ["kind", "seq"], unique=True)

    op.drop_index("ix_audit_events_identity", table_name="audit_events")
    op.drop_index("ix_audit_events_tool", table_name="audit_events")
    for column in _FILTERED:
        op.create_index(f"ix_audit_events_{column}_seq", "audit_events", [column, "seq"], unique=False)
    op.create_index("ix_audit_events_identity_ts", "audit_events", ["identity", "ts"], unique=False)
    op.create_index("ix_audit_events_approval_id", "audit_events", ["approval_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_events_approval_id", table_name="audit_events")
    op.drop_index("ix_audit_events_identity_ts", table_name="audit_events")
    for column in _FILTERED:
        op.drop_index(f"ix_audit_events_{column}_seq", table_name="audit_events")
    op.create_index("ix_audit_events_tool", "audit_events", ["tool"], unique=False)
    op.create_index("ix_audit_events_identity", "audit_events", ["identity"], unique=False)
    op.drop_table("audit_checkpoints")
