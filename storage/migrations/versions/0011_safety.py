"""Safety escalation: the ``counselor`` role, and urgent outbox rows (safety notices).

A counselor receives safety notices; the role joins the CHECK constraint on ``person_role``
(SQLite rebuilds the table: batch mode). ``outbox.urgent`` marks a safety notice, which
delivery claims before anything else and never holds behind older messages to its address.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_ROLES = "role IN ('student', 'advisor', 'teacher', 'admin')"
_NEW_ROLES = "role IN ('student', 'advisor', 'teacher', 'counselor', 'admin')"


def upgrade() -> None:
    with op.batch_alter_table("person_role") as batch:
        batch.drop_constraint("ck_person_role_role", type_="check")
        batch.create_check_constraint(op.f("ck_person_role_role"), _NEW_ROLES)
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("urgent")
    op.execute("DELETE FROM person_role WHERE role = 'counselor'")
    with op.batch_alter_table("person_role") as batch:
        batch.drop_constraint(op.f("ck_person_role_role"), type_="check")
        batch.create_check_constraint("ck_person_role_role", _OLD_ROLES)
