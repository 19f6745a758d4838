"""The personalised learning plan: goals with action steps and check-ins, reflections, artifacts.

``load_plan`` builds the whole plan in three queries (goals, their steps, their check-in
updates), whatever the number of goals: the engine loads it on every check-in turn.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from dialogues import Attachment

from ._audit import Viewing, record_views
from ._database import Database
from ._records import ArtifactRecord, CheckinGoalUpdateRecord, CheckinRecord, ReflectionRecord
from ._tables import (
    AnyRow,
    action_step,
    artifact,
    checkin,
    checkin_goal_update,
    goal,
    loads,
    reflection,
)

__all__ = ["PlanStore", "load_plan"]

_GOALS = (
    select(
        goal.c.id,
        goal.c.title,
        goal.c.why,
        goal.c.category,
        goal.c.target_date,
        goal.c.support,
        goal.c.status,
        goal.c.created_at,
    )
    .where(goal.c.person_id == bindparam("person_id"))
    .order_by(goal.c.id)
)
_STEPS = (
    select(action_step.c.goal_id, action_step.c.text)
    .join(goal, goal.c.id == action_step.c.goal_id)
    .where(goal.c.person_id == bindparam("person_id"))
    .order_by(action_step.c.goal_id, action_step.c.position, action_step.c.id)
)
_UPDATES = (
    select(
        checkin_goal_update.c.checkin_id,
        checkin_goal_update.c.goal_id,
        checkin_goal_update.c.progress,
        checkin_goal_update.c.did,
        checkin_goal_update.c.blockers,
        checkin_goal_update.c.next_step,
        checkin.c.mood,
        checkin.c.energy,
        checkin.c.created_at,
    )
    .join(checkin, checkin.c.id == checkin_goal_update.c.checkin_id)
    .where(checkin.c.person_id == bindparam("person_id"))
    .order_by(checkin.c.created_at, checkin.c.id)
)


def load_plan(conn: Connection, person_id: int) -> dict[str, Any]:
    """``{"goals": [...], "active_goals": [...]}``: goal dicts, oldest goal first."""
    params = {"person_id": person_id}
    goal_rows = conn.execute(_GOALS, params).all()
    if not goal_rows:
        return {"goals": [], "active_goals": []}
    steps: dict[int, list[str]] = defaultdict(list)
    for step in conn.execute(_STEPS, params):
        steps[step.goal_id].append(step.text)
    checkins: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for update in conn.execute(_UPDATES, params):
        checkins[update.goal_id].append(_goal_checkin(update))
    goals = [_goal_dict(row, steps[row.id], checkins[row.id]) for row in goal_rows]
    return {"goals": goals, "active_goals": [g for g in goals if g["status"] == "active"]}


def _goal_checkin(row: AnyRow) -> dict[str, Any]:
    return {
        "at": _iso(row.created_at),
        "mood": loads(row.mood),
        "energy": loads(row.energy),
        "progress": loads(row.progress),
        "did": row.did,
        "blockers": row.blockers,
        "next_step": row.next_step,
    }


def _goal_dict(row: AnyRow, steps: list[str], checkins: list[dict[str, Any]]) -> dict[str, Any]:
    last = checkins[-1] if checkins else None
    return {
        "id": row.id,
        "title": row.title,
        "why": row.why,
        "category": row.category,
        "target_date": _iso(row.target_date),
        "support": row.support,
        "status": row.status,
        "action_steps": steps,
        "created_at": _iso(row.created_at),
        "last_checkin": None
        if last is None
        else {k: last[k] for k in ("progress", "did", "blockers", "next_step", "at")},
        "checkins": checkins,
    }


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class PlanStore:
    """Read a person's plan: goals, check-ins, reflections and artifacts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def plan(self, person_id: int, *, seen: Viewing | None = None) -> dict[str, Any]:
        """``{"goals": [...], "active_goals": [...]}`` (see ``load_plan``); ``seen``: the view
        to audit, written in the same transaction."""
        with self._db.begin() as conn:
            if seen is not None:
                record_views(conn, seen, [person_id])
            return load_plan(conn, person_id)

    def checkins(self, person_id: int) -> list[CheckinRecord]:
        """Every check-in with its per-goal updates, oldest first."""
        with self._db.begin() as conn:
            rows = conn.execute(
                select(checkin)
                .where(checkin.c.person_id == person_id)
                .order_by(checkin.c.created_at, checkin.c.id)
            ).all()
            updates = conn.execute(
                select(checkin_goal_update)
                .join(checkin, checkin.c.id == checkin_goal_update.c.checkin_id)
                .where(checkin.c.person_id == person_id)
                .order_by(checkin_goal_update.c.id)
            ).all()
        by_checkin: dict[int, list[CheckinGoalUpdateRecord]] = defaultdict(list)
        for u in updates:
            by_checkin[u.checkin_id].append(
                CheckinGoalUpdateRecord(
                    u.goal_id, loads(u.progress), u.did, u.blockers, u.next_step
                )
            )
        return [_checkin_record(row, tuple(by_checkin[row.id])) for row in rows]

    def reflections(self, person_id: int) -> list[ReflectionRecord]:
        """Every reflection, oldest first."""
        with self._db.begin() as conn:
            rows = conn.execute(
                select(reflection)
                .where(reflection.c.person_id == person_id)
                .order_by(reflection.c.created_at, reflection.c.id)
            ).all()
        return [
            ReflectionRecord(
                id=r.id,
                person_id=r.person_id,
                conversation_id=r.conversation_id,
                fields=dict(loads(r.fields) or {}),
                created_at=r.created_at,
            )
            for r in rows
        ]

    def artifacts(self, person_id: int) -> list[ArtifactRecord]:
        """Every shared work sample, oldest first."""
        with self._db.begin() as conn:
            rows = conn.execute(
                select(artifact).where(artifact.c.person_id == person_id).order_by(artifact.c.id)
            ).all()
        return [_artifact_record(r) for r in rows]


def _checkin_record(row: AnyRow, updates: tuple[CheckinGoalUpdateRecord, ...]) -> CheckinRecord:
    return CheckinRecord(
        id=row.id,
        person_id=row.person_id,
        conversation_id=row.conversation_id,
        mood=loads(row.mood),
        energy=loads(row.energy),
        note_for_advisor=row.note_for_advisor,
        wants_meeting=row.wants_meeting,
        highlight=row.highlight,
        created_at=row.created_at,
        goal_updates=updates,
    )


def _artifact_record(row: AnyRow) -> ArtifactRecord:
    return ArtifactRecord(
        id=row.id,
        person_id=row.person_id,
        goal_id=row.goal_id,
        attachment=Attachment(
            kind=row.kind,
            file_id=row.file_id,
            name=row.name,
            mime_type=row.mime_type,
            url=row.url,
            caption=row.caption,
        ),
        conversation_id=row.conversation_id,
        origin=row.origin,
        created_at=row.created_at,
    )
