"""Initial schema: people, profile facts, plans, conversations, outbox, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written out in full (no imports from the application), so later model changes never alter
what this revision creates. JSON lives in TEXT columns; times are timestamptz / ISO text.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flow_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_version"),
        sa.UniqueConstraint("content_hash", name="uq_flow_version_content_hash"),
    )
    op.create_index("ix_flow_version_flow_id_version", "flow_version", ["flow_id", "version"])

    op.create_table(
        "inbound_event",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_inbound_event"),
    )
    op.create_index("ix_inbound_event_received_at", "inbound_event", ["received_at"])

    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handle", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("first_name", sa.String(), nullable=False),
        sa.Column("timezone", sa.String(), nullable=True),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_person"),
        sa.UniqueConstraint("handle", name="uq_person_handle"),
    )

    op.create_table(
        "student_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_student_group"),
        sa.UniqueConstraint("name", name="uq_student_group_name"),
    )

    op.create_table(
        "advisor_link",
        sa.Column("advisor_id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["advisor_id"], ["person.id"], name="fk_advisor_link_advisor_id_person"
        ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["person.id"], name="fk_advisor_link_student_id_person"
        ),
        sa.PrimaryKeyConstraint("advisor_id", "student_id", name="pk_advisor_link"),
    )
    op.create_index("ix_advisor_link_student_id", "advisor_link", ["student_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_person_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("subject_person_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_person_id"], ["person.id"], name="fk_audit_log_actor_person_id_person"
        ),
        sa.ForeignKeyConstraint(
            ["subject_person_id"], ["person.id"], name="fk_audit_log_subject_person_id_person"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_subject_person_id", "audit_log", ["subject_person_id"])

    op.create_table(
        "channel_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("platform_user_id", sa.String(), nullable=False),
        sa.Column("chat_id", sa.String(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("unreachable", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_channel_identity_person_id_person"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_channel_identity"),
        sa.UniqueConstraint(
            "platform",
            "workspace",
            "platform_user_id",
            name="uq_channel_identity_platform_workspace_platform_user_id",
        ),
    )
    op.create_index("ix_channel_identity_person_id", "channel_identity", ["person_id"])

    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("flow_version_id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["flow_version_id"],
            ["flow_version.id"],
            name="fk_conversation_flow_version_id_flow_version",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_conversation_person_id_person"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_conversation"),
    )
    op.create_index(
        "ix_conversation_person_id_status_updated_at",
        "conversation",
        ["person_id", "status", "updated_at"],
    )

    op.create_table(
        "group_member",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["student_group.id"], name="fk_group_member_group_id_student_group"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_group_member_person_id_person"
        ),
        sa.PrimaryKeyConstraint("group_id", "person_id", name="pk_group_member"),
    )
    op.create_index("ix_group_member_person_id", "group_member", ["person_id"])

    op.create_table(
        "person_role",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.CheckConstraint(
            "role IN ('student', 'advisor', 'teacher', 'admin')", name="ck_person_role_role"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_person_role_person_id_person"
        ),
        sa.PrimaryKeyConstraint("person_id", "role", name="pk_person_role"),
    )

    op.create_table(
        "schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("cron", sa.String(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["student_group.id"], name="fk_schedule_group_id_student_group"
        ),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name="fk_schedule_person_id_person"),
        sa.PrimaryKeyConstraint("id", name="pk_schedule"),
    )
    op.create_index("ix_schedule_next_run_at", "schedule", ["next_run_at"])

    op.create_table(
        "answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversation.id"], name="fk_answer_conversation_id_conversation"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_answer"),
    )
    op.create_index("ix_answer_conversation_id", "answer", ["conversation_id"])

    op.create_table(
        "checkin",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("mood", sa.Text(), nullable=True),
        sa.Column("energy", sa.Text(), nullable=True),
        sa.Column("note_for_advisor", sa.Text(), nullable=True),
        sa.Column("wants_meeting", sa.Boolean(), nullable=True),
        sa.Column("highlight", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversation.id"], name="fk_checkin_conversation_id_conversation"
        ),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name="fk_checkin_person_id_person"),
        sa.PrimaryKeyConstraint("id", name="pk_checkin"),
        sa.UniqueConstraint("conversation_id", name="uq_checkin_conversation_id"),
    )
    op.create_index("ix_checkin_person_id", "checkin", ["person_id"])

    op.create_table(
        "goal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("why", sa.Text(), nullable=True),
        sa.Column("category", sa.String(), nullable=True),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("support", sa.Text(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("origin_key", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'completed', 'paused', 'dropped')", name="ck_goal_status"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversation.id"], name="fk_goal_conversation_id_conversation"
        ),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name="fk_goal_person_id_person"),
        sa.PrimaryKeyConstraint("id", name="pk_goal"),
        sa.UniqueConstraint(
            "conversation_id", "origin_key", name="uq_goal_conversation_id_origin_key"
        ),
    )
    op.create_index("ix_goal_person_id", "goal", ["person_id"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("platform", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("platform_message_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'dead')", name="ck_outbox_status"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversation.id"], name="fk_outbox_conversation_id_conversation"
        ),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name="fk_outbox_person_id_person"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_person_id", "outbox", ["person_id"])
    op.create_index("ix_outbox_status_not_before", "outbox", ["status", "not_before"])

    op.create_table(
        "profile_fact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("flow_id", sa.String(), nullable=True),
        sa.Column("flow_version", sa.Integer(), nullable=True),
        sa.Column("step_id", sa.String(), nullable=True),
        sa.Column("origin", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name="fk_profile_fact_conversation_id_conversation",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_profile_fact_person_id_person"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_profile_fact"),
    )
    op.create_index(
        "ix_profile_fact_person_id_field_id", "profile_fact", ["person_id", "field", "id"]
    )

    op.create_table(
        "reflection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name="fk_reflection_conversation_id_conversation",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_reflection_person_id_person"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reflection"),
        sa.UniqueConstraint("conversation_id", name="uq_reflection_conversation_id"),
    )
    op.create_index("ix_reflection_person_id", "reflection", ["person_id"])

    op.create_table(
        "action_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name="fk_action_step_conversation_id_conversation",
        ),
        sa.ForeignKeyConstraint(["goal_id"], ["goal.id"], name="fk_action_step_goal_id_goal"),
        sa.PrimaryKeyConstraint("id", name="pk_action_step"),
    )
    op.create_index("ix_action_step_goal_id_position", "action_step", ["goal_id", "position"])

    op.create_table(
        "artifact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("file_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("mime_type", sa.String(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name="fk_artifact_conversation_id_conversation",
        ),
        sa.ForeignKeyConstraint(["goal_id"], ["goal.id"], name="fk_artifact_goal_id_goal"),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name="fk_artifact_person_id_person"),
        sa.PrimaryKeyConstraint("id", name="pk_artifact"),
    )
    op.create_index("ix_artifact_person_id", "artifact", ["person_id"])

    op.create_table(
        "checkin_goal_update",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Text(), nullable=True),
        sa.Column("did", sa.Text(), nullable=True),
        sa.Column("blockers", sa.Text(), nullable=True),
        sa.Column("next_step", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["checkin_id"], ["checkin.id"], name="fk_checkin_goal_update_checkin_id_checkin"
        ),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goal.id"], name="fk_checkin_goal_update_goal_id_goal"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_checkin_goal_update"),
        sa.UniqueConstraint(
            "checkin_id", "goal_id", name="uq_checkin_goal_update_checkin_id_goal_id"
        ),
    )
    op.create_index("ix_checkin_goal_update_goal_id", "checkin_goal_update", ["goal_id"])


def downgrade() -> None:
    op.drop_table("checkin_goal_update")
    op.drop_table("artifact")
    op.drop_table("action_step")
    op.drop_table("reflection")
    op.drop_table("profile_fact")
    op.drop_table("outbox")
    op.drop_table("goal")
    op.drop_table("checkin")
    op.drop_table("answer")
    op.drop_table("schedule")
    op.drop_table("person_role")
    op.drop_table("group_member")
    op.drop_table("conversation")
    op.drop_table("channel_identity")
    op.drop_table("audit_log")
    op.drop_table("advisor_link")
    op.drop_table("student_group")
    op.drop_table("person")
    op.drop_table("inbound_event")
    op.drop_table("flow_version")
