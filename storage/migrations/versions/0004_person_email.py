"""A person's email: Slack users are matched to the roster by the email of their account.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("person", sa.Column("email", sa.String(), nullable=True))
    op.create_index("ix_person_email", "person", ["email"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_person_email", table_name="person")
    with op.batch_alter_table("person") as batch:
        batch.drop_column("email")
