"""Proactive conversations: schedules, surveys, the starts they owe, breaks, reminders, claims.

The placeholder ``schedule`` table of 0001 (never used) is replaced by the real one.
Conversations learn what started them and when to remind and expire them; outbox rows learn
whether they were sent on the bot's own initiative and which delivery process holds them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_index("ix_schedule_next_run_at", table_name="schedule")
    op.drop_table("schedule")
    op.create_table(
        "schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.CheckConstraint("status IN ('active', 'paused')", name="ck_schedule_status"),
        sa.PrimaryKeyConstraint("id", name="pk_schedule"),
    )
    op.create_table(
        "survey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("sent_by", sa.Integer(), nullable=True),
        sa.Column("sent_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["student_group.id"], name="fk_survey_group_id_student_group"
        ),
        sa.ForeignKeyConstraint(["sent_by"], ["person.id"], name="fk_survey_sent_by_person"),
        sa.PrimaryKeyConstraint("id", name="pk_survey"),
    )
    op.create_index("ix_survey_group_id", "survey", ["group_id"])
    op.create_table(
        "due_start",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("survey_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("occurrence", sa.String(), nullable=False),
        sa.Column("due_at", _TIME, nullable=False),
        sa.Column("wake_at", _TIME, nullable=True),
        sa.Column("waiting", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_due_start_person_id_person"
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedule.id"], name="fk_due_start_schedule_id_schedule"
        ),
        sa.ForeignKeyConstraint(["survey_id"], ["survey.id"], name="fk_due_start_survey_id_survey"),
        sa.PrimaryKeyConstraint("id", name="pk_due_start"),
        sa.UniqueConstraint("schedule_id", "person_id", name="uq_due_start_schedule_id_person_id"),
        sa.UniqueConstraint("survey_id", "person_id", name="uq_due_start_survey_id_person_id"),
    )
    op.create_index("ix_due_start_person_id", "due_start", ["person_id"])
    op.create_index("ix_due_start_wake_at", "due_start", ["wake_at"])
    op.create_table(
        "school_break",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("uid", sa.String(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_school_break"),
        sa.UniqueConstraint("uid", name="uq_school_break_uid"),
    )
    with op.batch_alter_table("conversation") as batch:
        batch.add_column(sa.Column("schedule_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("survey_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("remind_at", _TIME, nullable=True))
        batch.add_column(sa.Column("expires_at", _TIME, nullable=True))
        batch.create_foreign_key(
            "fk_conversation_schedule_id_schedule", "schedule", ["schedule_id"], ["id"]
        )
        batch.create_foreign_key(
            "fk_conversation_survey_id_survey", "survey", ["survey_id"], ["id"]
        )
        batch.create_index("ix_conversation_survey_id", ["survey_id"])
        batch.create_index("ix_conversation_remind_at", ["remind_at"])
        batch.create_index("ix_conversation_expires_at", ["expires_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("proactive", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("claimed_until", _TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("proactive")
    with op.batch_alter_table("conversation") as batch:
        batch.drop_index("ix_conversation_expires_at")
        batch.drop_index("ix_conversation_remind_at")
        batch.drop_index("ix_conversation_survey_id")
        batch.drop_constraint("fk_conversation_survey_id_survey", type_="foreignkey")
        batch.drop_constraint("fk_conversation_schedule_id_schedule", type_="foreignkey")
        batch.drop_column("expires_at")
        batch.drop_column("remind_at")
        batch.drop_column("survey_id")
        batch.drop_column("schedule_id")
    op.drop_table("school_break")
    op.drop_table("due_start")
    op.drop_table("survey")
    op.drop_table("schedule")
    op.create_table(
        "schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("cron", sa.String(), nullable=False),
        sa.Column("next_run_at", _TIME, nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["student_group.id"], name="fk_schedule_group_id_student_group"
        ),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name="fk_schedule_person_id_person"),
        sa.PrimaryKeyConstraint("id", name="pk_schedule"),
    )
    op.create_index("ix_schedule_next_run_at", "schedule", ["next_run_at"])
