"""The send budget delivery processes share: one row per platform (``delivery_pace``).

Several processes may deliver the outbox at once; a platform's rate limit is the bot's, not a
process's, so their claims reserve send slots from one shared row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_pace",
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", name="pk_delivery_pace"),
    )


def downgrade() -> None:
    op.drop_table("delivery_pace")
