"""Data rights: erasure receipts, the daily prune's claim, and when a transcript was pruned.

``erasure_receipt`` is what is left of an erased person (counts, a time, who did it; no
content). ``housekeeping`` lets one process of several claim the day's prune.
``conversation.pruned_at`` marks a conversation whose transcript retention removed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "erasure_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_handle", sa.String(), nullable=False),
        sa.Column("person_ref", sa.Integer(), nullable=False),
        sa.Column("erased_at", _TIME, nullable=False),
        sa.Column("erased_by", sa.String(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erasure_receipt"),
    )
    op.create_index(
        "ix_erasure_receipt_person_handle", "erasure_receipt", ["person_handle"], unique=False
    )
    op.create_table(
        "housekeeping",
        sa.Column("task", sa.String(), nullable=False),
        sa.Column("last_run_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("task", name="pk_housekeeping"),
    )
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("pruned_at", _TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversation") as batch:
        batch.drop_column("pruned_at")
    op.drop_table("housekeeping")
    op.drop_index("ix_erasure_receipt_person_handle", table_name="erasure_receipt")
    op.drop_table("erasure_receipt")
