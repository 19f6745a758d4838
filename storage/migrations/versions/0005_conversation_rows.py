"""A conversation's archive: the older answers and `/back` history frames of a long
conversation, as rows, so that a turn's cost does not grow with the conversation (before,
every turn read and wrote all of them in ``conversation.state``).

A state keeps its recent answers and frames itself, in the same JSON as before, and says
how much is archived (``archived_frames``, ``archived_answers``); states stored before
simply have nothing archived yet. The downgrade folds the archive back into ``state``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversation_answer",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name="fk_conversation_answer_conversation_id_conversation",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "step_id", name="pk_conversation_answer"),
    )
    op.create_table(
        "conversation_frame",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=True),
        sa.Column("goal_key", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name="fk_conversation_frame_conversation_id_conversation",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "position", name="pk_conversation_frame"),
    )


def downgrade() -> None:
    conn = op.get_bind()
    for conversation_id, state in conn.execute(sa.text("SELECT id, state FROM conversation")).all():
        data = json.loads(state)
        archived_frames = data.pop("archived_frames", 0)
        if not (data.pop("archived_answers", False) or archived_frames):
            continue
        params = {"id": conversation_id, "frames": archived_frames}
        answers = conn.execute(
            sa.text("SELECT step_id, value FROM conversation_answer WHERE conversation_id = :id"),
            params,
        ).all()
        frames = conn.execute(
            sa.text(
                "SELECT step_id, iteration, goal_key FROM conversation_frame "
                "WHERE conversation_id = :id AND position < :frames ORDER BY position"
            ),
            params,
        ).all()
        archived = {step_id: json.loads(value) for step_id, value in answers}
        data["answers"] = {k: v for k, v in archived.items() if k not in data["answers"]} | data[
            "answers"
        ]
        data["history"] = [list(frame) for frame in frames] + data["history"]
        conn.execute(
            sa.text("UPDATE conversation SET state = :state WHERE id = :id"),
            {
                "state": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                "id": conversation_id,
            },
        )
    op.drop_table("conversation_frame")
    op.drop_table("conversation_answer")
