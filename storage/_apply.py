"""Applying a turn's effects inside the turn's transaction, with provenance on every row.

Every effect carries ``origin`` ("<step id>#<iteration>"). Rows an answer creates are keyed
by (conversation, origin), so re-answering a step after `/back` replaces what the first answer
wrote instead of adding to it, and withdrawing an answer (`/back` past it, off the path)
removes it. Values are never logged. This runs inside every turn, so its statements are plain
SQL from ``_sql``, and the usual check-in writes are single upserts; withdrawals are rare and
use Core.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Never, NoReturn

from sqlalchemy import ColumnElement, delete, exists, or_, select, update

from dialogues import (
    CHECKIN_FIELDS,
    CHECKIN_GOAL_FIELDS,
    GOAL_STATUSES,
    AddActionSteps,
    Effect,
    FlagStep,
    GoalRef,
    NewGoal,
    SaveArtifact,
    SaveKind,
    SetCheckin,
    SetCheckinGoal,
    SetGoal,
    SetOptOut,
    SetProfile,
    SetReflection,
    Withdraw,
)

from . import _sql as q
from ._sql import Sql
from ._tables import (
    action_step,
    artifact,
    checkin,
    checkin_goal_update,
    dumps,
    goal,
    loads,
    profile_fact,
)

__all__ = ["EffectWriter", "Provenance", "audit"]

log = logging.getLogger("profilebot.storage")

# Which fields a flow may save is the dialogue core's to say (GOAL_FIELDS, CHECKIN_FIELDS...);
# how each is kept is said here: text, but for an answer that may be a number or a choice
# (JSON), a yes/no (a boolean) and the goal's status and date.
_GOAL_TEXT_FIELDS = q.GOAL_COLUMNS - {"status", "target_date"}
_CHECKIN_JSON_FIELDS = frozenset({"mood", "energy"})
_CHECKIN_BOOLEAN_FIELDS = frozenset({"wants_meeting"})
_CHECKIN_GOAL_JSON_FIELDS = frozenset({"progress"})


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who and what every row of one turn comes from."""

    person_id: int
    conversation_id: int
    flow_id: str
    flow_version: int
    now: datetime


def audit(
    sql: Sql,
    action: str,
    *,
    subject_person_id: int | None,
    detail: dict[str, Any],
    now: datetime,
    actor_person_id: int | None = None,
) -> None:
    sql.execute(
        q.INSERT_AUDIT,
        {
            "actor_person_id": actor_person_id,
            "action": action,
            "subject_person_id": subject_person_id,
            "detail": dumps(detail),
            "now": sql.time(now),
        },
    )


def _step_id(origin: str) -> str:
    return origin.split("#", 1)[0]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _text(value: Any) -> str | None:
    """A plain-text column's value: lists become "a, b", yes/no stays readable."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


@dataclass(slots=True)
class EffectWriter:
    """Applies effects for one turn; caches goal and check-in ids it has already resolved."""

    sql: Sql
    prov: Provenance
    _goal_ids: dict[str, int] = field(default_factory=dict)
    _owned_goals: dict[int, bool] = field(default_factory=dict)
    _checkin_id: int | None = None
    _now: Any = None  # prov.now as the driver takes it

    def __post_init__(self) -> None:
        self._now = self.sql.time(self.prov.now)

    def apply(self, effects: Sequence[Effect]) -> None:
        """Apply each effect; one of a type this does not know raises (mypy finds it first)."""
        for effect in effects:
            match effect:
                case SetProfile():
                    self._set_profile(effect)
                case SetGoal():
                    self._set_goal(effect)
                case AddActionSteps():
                    self._add_steps(effect.goal, effect.steps, effect.origin)
                case SetCheckin():
                    self._set_checkin(effect)
                case SetCheckinGoal():
                    self._set_checkin_goal(effect)
                case SetReflection():
                    self._set_reflection(effect)
                case SaveArtifact():
                    self._save_artifact(effect)
                case FlagStep():
                    self._flag(effect)
                case SetOptOut():
                    self._opt_out(effect)
                case Withdraw():
                    self._withdraw(effect)
                case _:
                    _unhandled(effect)

    # --- profile ------------------------------------------------------------------------

    def _set_profile(self, e: SetProfile) -> None:
        if not e.path:
            log.warning("ignored a profile effect without a field (origin %s)", e.origin)
            return
        name = ".".join(e.path)
        value = self._appended(name, e) if e.append else e.value
        self.sql.execute(
            q.INSERT_FACT,
            {
                "person_id": self.prov.person_id,
                "field": name,
                "value": dumps(value),
                "private": e.private,
                "conversation_id": self.prov.conversation_id,
                "flow_id": self.prov.flow_id,
                "flow_version": self.prov.flow_version,
                "step_id": _step_id(e.origin),
                "origin": e.origin,
                "now": self._now,
            },
        )

    def _appended(self, name: str, e: SetProfile) -> list[Any]:
        """The current list plus the new items, de-duplicated, order kept.

        The base skips facts this same answer (conversation + origin) wrote earlier, so a
        re-answer after `/back` replaces its items instead of adding them twice.
        """
        base = self.sql.scalar(
            q.APPEND_BASE,
            {
                "person_id": self.prov.person_id,
                "field": name,
                "conversation_id": self.prov.conversation_id,
                "origin": e.origin,
            },
        )
        merged: list[Any] = []
        for item in [*_as_list(loads(base)), *_as_list(e.value)]:
            if item not in merged:
                merged.append(item)
        return merged

    # --- goals --------------------------------------------------------------------------

    def _goal_id(self, ref: GoalRef, origin: str) -> int | None:
        """The goal a reference means, created for a NewGoal; None for someone else's goal."""
        if isinstance(ref, NewGoal):
            return self._new_goal_id(ref.key)
        if self._owns(ref.goal_id, origin):
            return ref.goal_id
        return None

    def _new_goal_id(self, key: str) -> int:
        cached = self._goal_ids.get(key)
        if cached is not None:
            return cached
        params = {"conversation_id": self.prov.conversation_id, "origin_key": key}
        goal_id = self.sql.scalar(q.NEW_GOAL_ID, params)
        if goal_id is None:
            goal_id = self.sql.scalar(
                q.INSERT_GOAL, {**params, "person_id": self.prov.person_id, "now": self._now}
            )
        self._goal_ids[key] = int(goal_id)
        return int(goal_id)

    def _owns(self, goal_id: int, origin: str) -> bool:
        """True when the goal is this person's; otherwise the attempt is audited."""
        owned = self._owned_goals.get(goal_id)
        if owned is None:
            owner = self.sql.scalar(q.GOAL_OWNER, {"goal_id": goal_id})
            owned = self._owned_goals[goal_id] = owner == self.prov.person_id
        if not owned:
            log.warning("ignored an effect on goal %s: not this person's goal", goal_id)
            self._audit("foreign_goal_ignored", {"goal_id": goal_id, "origin": origin})
        return owned

    def _set_goal(self, e: SetGoal) -> None:
        if e.field == "action_steps":
            self._add_steps(e.goal, tuple(str(s) for s in _as_list(e.value)), e.origin)
            return
        goal_id = self._goal_id(e.goal, e.origin)
        if goal_id is None:
            return
        value = self._goal_value(e.field, e.value, goal_id)
        if value is _IGNORE:
            return
        if e.field == "target_date":
            value = self.sql.date(value)
        self.sql.execute(
            q.SET_GOAL[e.field], {"value": value, "now": self._now, "goal_id": goal_id}
        )

    def _goal_value(self, name: str, value: Any, goal_id: int) -> Any:
        if name in _GOAL_TEXT_FIELDS:
            text = _text(value)
            return (text or "") if name == "title" else text
        if name == "status":
            if value in GOAL_STATUSES:
                return value
            log.warning("ignored an invalid status for goal %s", goal_id)
            return _IGNORE
        if name == "target_date":
            try:
                return None if value in (None, "") else _date(value)
            except ValueError:
                log.warning("ignored a target date for goal %s that is not a date", goal_id)
                return _IGNORE
        log.warning("ignored unknown goal field %r", name)
        return _IGNORE

    def _add_steps(self, ref: GoalRef, steps: tuple[str, ...], origin: str) -> None:
        """Replace the steps this answer added before, then append the new ones in order."""
        goal_id = self._goal_id(ref, origin)
        if goal_id is None:
            return
        self.sql.execute(
            q.DELETE_STEPS,
            {"goal_id": goal_id, "conversation_id": self.prov.conversation_id, "origin": origin},
        )
        texts = [s.strip() for s in steps if s and s.strip()]
        if not texts:
            return
        start = int(self.sql.scalar(q.NEXT_POSITION, {"goal_id": goal_id}))
        cid, now = self.prov.conversation_id, self._now
        self.sql.insert(
            "action_step",
            q.STEP_COLUMNS,
            [(goal_id, text, False, cid, origin, start + i, now) for i, text in enumerate(texts)],
        )

    # --- check-ins and reflections ------------------------------------------------------

    def _checkin_row(self) -> int:
        """This conversation's check-in row, created on first use."""
        if self._checkin_id is None:
            params = {"conversation_id": self.prov.conversation_id}
            found = self.sql.scalar(q.CHECKIN_ID, params)
            if found is None:
                found = self.sql.scalar(
                    q.INSERT_CHECKIN,
                    {**params, "person_id": self.prov.person_id, "now": self._now},
                )
            self._checkin_id = int(found)
        return self._checkin_id

    def _set_checkin(self, e: SetCheckin) -> None:
        if e.field not in CHECKIN_FIELDS:
            log.warning("ignored unknown check-in field %r", e.field)
            return
        if e.field in _CHECKIN_JSON_FIELDS:
            value: Any = dumps(e.value)
        elif e.field in _CHECKIN_BOOLEAN_FIELDS:
            value = None if e.value is None else bool(e.value)
        else:
            value = _text(e.value)
        checkin_id = self.sql.scalar(  # an upsert: creates the row on first use
            q.SET_CHECKIN[e.field],
            {
                "person_id": self.prov.person_id,
                "conversation_id": self.prov.conversation_id,
                "now": self._now,
                "value": value,
            },
        )
        self._checkin_id = int(checkin_id)

    def _set_checkin_goal(self, e: SetCheckinGoal) -> None:
        if e.field not in CHECKIN_GOAL_FIELDS:
            log.warning("ignored unknown check-in goal field %r", e.field)
            return
        value: Any = dumps(e.value) if e.field in _CHECKIN_GOAL_JSON_FIELDS else _text(e.value)
        params = {
            "conversation_id": self.prov.conversation_id,
            "person_id": self.prov.person_id,
            "goal_id": e.goal_id,
            "value": value,
        }
        if self.sql.execute(q.SET_CHECKIN_GOAL_IF_OWNED[e.field], params) == 1:
            return
        # someone else's goal (audited), or the check-in row does not exist yet
        if not self._owns(e.goal_id, e.origin):
            return
        params["checkin_id"] = self._checkin_row()
        self.sql.execute(q.SET_CHECKIN_GOAL[e.field], params)

    def _set_reflection(self, e: SetReflection) -> None:
        params = {"conversation_id": self.prov.conversation_id}
        row = self.sql.first(q.REFLECTION, params)
        if row is None:
            self.sql.execute(
                q.INSERT_REFLECTION,
                {
                    **params,
                    "person_id": self.prov.person_id,
                    "fields": dumps({e.field: e.value}),
                    "now": self._now,
                },
            )
            return
        reflection_id, stored = row
        fields = dict(loads(stored) or {})
        fields[e.field] = e.value
        self.sql.execute(q.UPDATE_REFLECTION, {"id": reflection_id, "fields": dumps(fields)})

    # --- withdrawn answers (/back past them) ----------------------------------------------

    def _withdraw(self, e: Withdraw) -> None:
        """Remove the rows the answer created; fields it set on shared records go back."""
        self.sql.execute(q.DELETE_ARTIFACTS, self._answer_keys(e.origin))
        target = e.target
        if target is None:
            return
        if target.kind is SaveKind.PROFILE:
            self._withdraw_facts(e.origin)
        elif target.kind is SaveKind.GOAL_NEW:
            self._discard_goal(e.origin)
        elif target.kind is SaveKind.GOAL_ACTION_STEPS or target.field == "action_steps":
            self._withdraw_steps(e)
        elif target.kind is SaveKind.GOAL:
            self._restore_goal_field(e, target.field)
        elif target.kind is SaveKind.CHECKIN:
            self._clear_checkin_field(target.field)
        elif target.kind is SaveKind.CHECKIN_GOAL and e.goal is not None:
            self._clear_checkin_goal_field(e.goal, target.field)
        elif target.kind is SaveKind.REFLECTION:
            self._clear_reflection_field(target.field)

    def _answer_keys(self, origin: str) -> dict[str, Any]:
        return {
            "person_id": self.prov.person_id,
            "conversation_id": self.prov.conversation_id,
            "origin": origin,
        }

    def _withdraw_facts(self, origin: str) -> None:
        """The field is back to its value before this answer.

        Answers leave the path last-given first, so what a later answer wrote is gone already.
        """
        self.sql.conn.execute(
            delete(profile_fact).where(
                profile_fact.c.person_id == self.prov.person_id,
                profile_fact.c.conversation_id == self.prov.conversation_id,
                profile_fact.c.origin == origin,
            )
        )

    def _discard_goal(self, key: str) -> None:
        """The goal this answer started leaves the plan.

        It is deleted, unless something else refers to it already (a check-in in another
        conversation): then it is kept, dropped and let go of, so a new answer starts a new goal.
        """
        goal_id = self._found_goal(NewGoal(key), key)
        if goal_id is None:
            return
        self._goal_ids.pop(key, None)
        conn = self.sql.conn
        if conn.execute(select(_goal_is_referenced(goal_id))).scalar():
            conn.execute(
                update(goal)
                .where(goal.c.id == goal_id)
                .values(status="dropped", origin_key=None, updated_at=self.prov.now)
            )
            return
        conn.execute(delete(goal).where(goal.c.id == goal_id))

    def _found_goal(self, ref: GoalRef, origin: str) -> int | None:
        """The goal a reference means if it exists (never created here) and is this person's."""
        if not isinstance(ref, NewGoal):
            return ref.goal_id if self._owns(ref.goal_id, origin) else None
        params = {"conversation_id": self.prov.conversation_id, "origin_key": ref.key}
        found = self.sql.scalar(q.NEW_GOAL_ID, params)
        return None if found is None else int(found)

    def _withdraw_steps(self, e: Withdraw) -> None:
        goal_id = None if e.goal is None else self._found_goal(e.goal, e.origin)
        if goal_id is not None:
            keys = {"goal_id": goal_id, "conversation_id": self.prov.conversation_id}
            self.sql.execute(q.DELETE_STEPS, {**keys, "origin": e.origin})

    def _restore_goal_field(self, e: Withdraw, name: str) -> None:
        """The field's value before this conversation: none on a goal it started."""
        goal_id = None if e.goal is None else self._found_goal(e.goal, e.origin)
        if goal_id is None or (name == "status" and e.previous is None):  # new goals are active
            return
        value = self._goal_value(name, e.previous, goal_id)
        if value is _IGNORE:
            return
        if name == "target_date":
            value = self.sql.date(value)
        self.sql.execute(q.SET_GOAL[name], {"value": value, "now": self._now, "goal_id": goal_id})

    def _clear_checkin_field(self, name: str) -> None:
        if name not in CHECKIN_FIELDS:
            return
        self.sql.conn.execute(
            update(checkin)
            .where(checkin.c.conversation_id == self.prov.conversation_id)
            .values({name: None})
        )

    def _clear_checkin_goal_field(self, ref: GoalRef, name: str) -> None:
        if isinstance(ref, NewGoal) or name not in CHECKIN_GOAL_FIELDS:
            return
        this_checkin = select(checkin.c.id).where(
            checkin.c.conversation_id == self.prov.conversation_id
        )
        self.sql.conn.execute(
            update(checkin_goal_update)
            .where(
                checkin_goal_update.c.goal_id == ref.goal_id,
                checkin_goal_update.c.checkin_id.in_(this_checkin.scalar_subquery()),
            )
            .values({name: None})
        )

    def _clear_reflection_field(self, name: str) -> None:
        row = self.sql.first(q.REFLECTION, {"conversation_id": self.prov.conversation_id})
        if row is None:
            return
        reflection_id, stored = row
        fields = dict(loads(stored) or {})
        if fields.pop(name, None) is not None:
            self.sql.execute(q.UPDATE_REFLECTION, {"id": reflection_id, "fields": dumps(fields)})

    # --- the rest -----------------------------------------------------------------------

    def _save_artifact(self, e: SaveArtifact) -> None:
        goal_id = None if e.goal is None else self._goal_id(e.goal, e.origin)
        keys = {
            "person_id": self.prov.person_id,
            "conversation_id": self.prov.conversation_id,
            "origin": e.origin,
        }
        self.sql.execute(q.DELETE_ARTIFACTS, keys)
        a = e.attachment
        self.sql.execute(
            q.INSERT_ARTIFACT,
            {
                **keys,
                "goal_id": goal_id,
                "kind": a.kind,
                "file_id": a.file_id,
                "name": a.name,
                "mime_type": a.mime_type,
                "url": a.url,
                "caption": a.caption,
                "now": self._now,
            },
        )

    def _flag(self, e: FlagStep) -> None:
        self._audit(
            "step_flagged",
            {
                "conversation_id": self.prov.conversation_id,
                "flow_id": self.prov.flow_id,
                "flow_version": self.prov.flow_version,
                "step_id": e.step_id,
                "reason": e.reason,
                "origin": e.origin,
            },
        )

    def _opt_out(self, e: SetOptOut) -> None:
        self.sql.execute(
            q.SET_OPT_OUT, {"opted_out": e.opted_out, "person_id": self.prov.person_id}
        )

    def _audit(self, action: str, detail: dict[str, Any]) -> None:
        audit(
            self.sql,
            action,
            subject_person_id=self.prov.person_id,
            detail=detail,
            now=self.prov.now,
        )


_IGNORE: Any = object()


def _unhandled(effect: Never) -> NoReturn:
    """An effect type no ``case`` above handles: mypy reports the call, at runtime it raises."""
    raise TypeError(f"storage cannot apply a {type(effect).__name__} effect")


def _goal_is_referenced(goal_id: int) -> ColumnElement[bool]:
    """Whether rows outside the goal itself point at it (steps, files, check-in updates)."""
    return or_(
        exists().where(action_step.c.goal_id == goal_id),
        exists().where(artifact.c.goal_id == goal_id),
        exists().where(checkin_goal_update.c.goal_id == goal_id),
    )
