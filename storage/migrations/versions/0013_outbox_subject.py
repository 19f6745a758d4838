"""Outbox subjects: whom a message to someone else is about.

A safety notice to a counselor, a card or summary to an advisor, survey results to a teacher
carry students' words in another person's outbox row. ``outbox_subject`` names the students
each such row is about, so that erasing a student deletes those rows too.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_subject",
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name="fk_outbox_subject_outbox_id_outbox",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_outbox_subject_person_id_person"
        ),
        sa.PrimaryKeyConstraint("outbox_id", "person_id", name="pk_outbox_subject"),
    )
    op.create_index(
        "ix_outbox_subject_person_id", "outbox_subject", ["person_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_subject_person_id", table_name="outbox_subject")
    op.drop_table("outbox_subject")
