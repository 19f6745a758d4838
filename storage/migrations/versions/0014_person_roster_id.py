"""A person remembers the roster system's id for them (OneRoster ``sourcedId``), so a later
export finds them when their username changes, when a delta names them only by that id, or
when a row deactivating them has no username. NULL: added by hand, or imported before this
revision (the next import finds them by handle and sets it).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("person", sa.Column("roster_id", sa.String(), nullable=True))
    op.create_index("ix_person_roster_id", "person", ["roster_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_person_roster_id", table_name="person")
    with op.batch_alter_table("person") as batch:
        batch.drop_column("roster_id")
