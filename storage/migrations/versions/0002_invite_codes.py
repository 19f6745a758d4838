"""Invite codes: single-use, expiring codes that link a chat account to a roster person.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invite_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redeemed_by", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_invite_code_person_id_person"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_invite_code"),
        sa.UniqueConstraint("code", name="uq_invite_code_code"),
    )
    op.create_index("ix_invite_code_person_id", "invite_code", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_invite_code_person_id", table_name="invite_code")
    op.drop_table("invite_code")
