"""Failed inbound messages: a message whose turn keeps failing is set aside (a dead letter).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "failed_inbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("event_key", sa.String(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("visitor", sa.Text(), nullable=False),
        sa.Column("inbound", sa.Text(), nullable=False),
        sa.Column("question_ref", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('parked', 'replayed')", name="ck_failed_inbound_status"),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_failed_inbound_person_id_person"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_failed_inbound"),
    )
    op.create_index("ix_failed_inbound_event_key", "failed_inbound", ["event_key"])
    op.create_index("ix_failed_inbound_person_id", "failed_inbound", ["person_id"])
    op.create_index("ix_failed_inbound_status", "failed_inbound", ["status"])


def downgrade() -> None:
    op.drop_table("failed_inbound")
