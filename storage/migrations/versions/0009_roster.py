"""What a school's roster system says about a person: whether they are still on it
(``active``: a OneRoster ``tobedeleted`` turns it off, keeping their data), their birth date
when the roster gives one, and the ``dateLastModified`` of the roster row last applied (an
older row changes nothing). A group made from a roster's class keeps the class's id
(``roster_id``), so a renamed class renames its group and a delta can name it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column("roster_modified_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.add_column("student_group", sa.Column("roster_id", sa.String(), nullable=True))
    op.create_index("ix_student_group_roster_id", "student_group", ["roster_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_student_group_roster_id", table_name="student_group")
    with op.batch_alter_table("student_group") as batch:
        batch.drop_column("roster_id")
    with op.batch_alter_table("person") as batch:
        batch.drop_column("roster_modified_at")
        batch.drop_column("birth_date")
        batch.drop_column("active")
