"""Consent: a parent's consent to sensitive (PPRA) questions, and a hand-set under-13 flag.

``consent`` keeps every grant and revoke (who gave it, when, a note); the latest decides.
``person.under_13`` is an administrator's override of what a birth date would say (NULL: not
set by hand).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("given_by", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_consent_person_id_person"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_consent"),
    )
    op.create_index("ix_consent_person_id", "consent", ["person_id"], unique=False)
    with op.batch_alter_table("person") as batch:
        batch.add_column(sa.Column("under_13", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.drop_column("under_13")
    op.drop_index("ix_consent_person_id", table_name="consent")
    op.drop_table("consent")
