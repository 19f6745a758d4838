"""Outbox by conversation: find a conversation's latest question without a scan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_conversation_id_id", "outbox", ["conversation_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_conversation_id_id", table_name="outbox")
