"""Approvals bind the request kind: a prompt's approval never covers a tool call or a read of the same name.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Rows written before this revision become ``tool``. Most are; a resource read's or prompt get's
row written between issue 14 and this revision is then mislabelled but releases nothing: its
own retry (kind resource/prompt) no longer matches it and asks for a new approval, and no tool
call matches its empty ``tool_hash`` (every listed tool has a definition hash).

Frozen: a revision never imports ``gateway.models``; the types are spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="tool"))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("kind")
