"""Surveys: a flow a teacher sends to one group once, and how far it has got.

Sending writes the survey and one ``due_start`` row per student of the group in one
transaction, so who the survey is for is fixed when it is sent, and a send that dies halfway
leaves rows the scheduler finishes (each start claims its own key, so nobody gets it twice).
The check that the same flow did not just go to the same group runs under the group's lock,
so two teachers pressing "send" at once cannot both send it.

Its status is read live: conversations started, completed, expired or under way, and who of
the group cannot be reached (no account yet, opted out, blocked the bot). Its responses (the
completed conversations, each with its answers) are read in two statements, however many
students answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, and_, case, exists, func, insert, literal, select, update

from dialogues import ConversationStatus

from ._database import Database
from ._records import GroupRecord, SurveyRecord
from ._schedules import SURVEY_OCCURRENCE
from ._sql import CLAIM_EVENT, Sql
from ._tables import (
    AnyRow,
    answer,
    channel_identity,
    conversation,
    due_start,
    group_member,
    loads,
    person,
    person_role,
    student_group,
    survey,
    utcnow,
)
from .errors import InvalidValueError, UnknownRecordError

__all__ = [
    "RecentSurveyError",
    "StaleSurveyError",
    "SurveyAnswer",
    "SurveyCounts",
    "SurveyResponse",
    "SurveyStore",
]

_UNDER_WAY: Final = (ConversationStatus.ACTIVE.value, ConversationStatus.PAUSED.value)
_FINISHED: Final = (ConversationStatus.COMPLETED.value, ConversationStatus.EXPIRED.value)
_ANSWERED: Final = "answered"


class RecentSurveyError(InvalidValueError):
    """The same flow went to the same group a short while ago (``earlier``)."""

    def __init__(self, earlier: SurveyRecord) -> None:
        self.earlier = earlier
        super().__init__(
            f"{earlier.flow_id} was sent to {earlier.group.name} on "
            f"{earlier.sent_at:%Y-%m-%d %H:%M} UTC (survey {earlier.id})"
        )


class StaleSurveyError(InvalidValueError):
    """A repeat was confirmed for a survey that is no longer the latest of its flow and group:
    someone sent it again meanwhile (a second tap, another teacher)."""


@dataclass(frozen=True, slots=True)
class SurveyCounts:
    """A survey's live counts (``survey status``); the keys are product.md's."""

    started: int
    completed: int
    expired: int
    in_progress: int
    no_account: int
    opted_out: int
    unreachable: int

    def to_json(self) -> dict[str, int]:
        return {
            "started": self.started,
            "completed": self.completed,
            "expired": self.expired,
            "in_progress": self.in_progress,
            "no_account": self.no_account,
            "opted_out": self.opted_out,
            "unreachable": self.unreachable,
        }


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """One step's answer in a response (``iteration``: the loop pass, None outside loops)."""

    step_id: str
    iteration: int | None
    value: Any


@dataclass(frozen=True, slots=True)
class SurveyResponse:
    """A completed conversation of a survey: who answered, and their answers in the order
    given (the last answer to each step; a step they skipped has none)."""

    conversation_id: int
    person_id: int
    handle: str
    display_name: str
    answers: tuple[SurveyAnswer, ...]


_SURVEY_COLUMNS = (
    survey.c.id,
    survey.c.flow_id,
    survey.c.group_id,
    student_group.c.name.label("group_name"),
    survey.c.sent_by,
    survey.c.sent_at,
)
_SURVEYS = select(*_SURVEY_COLUMNS).join(student_group, student_group.c.id == survey.c.group_id)


def _record(row: AnyRow) -> SurveyRecord:
    return SurveyRecord(
        id=row.id,
        flow_id=row.flow_id,
        group=GroupRecord(row.group_id, row.group_name),
        sent_by=row.sent_by,
        sent_at=row.sent_at,
    )


class SurveyStore:
    """Sends surveys (their rows) and reads them back with their live counts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def send(
        self,
        flow_id: str,
        group: GroupRecord,
        *,
        sent_by: int | None,
        now: datetime | None = None,
        not_since: datetime | None,
        repeating: int | None = None,
        event_key: str | None = None,
        wake_at: datetime | None = None,
    ) -> tuple[SurveyRecord, list[int]] | None:
        """Write a survey of ``flow_id`` to ``group`` and a due start for each of its students;
        returns the survey and those students' person ids.

        ``event_key`` is the chat message that asked for it: claimed in the same transaction,
        so a platform's redelivery of it sends nothing (None). ``wake_at`` is when the
        scheduler starts the students this send has not (default: now): the sender starts
        them meanwhile, then ``settle``s the rows.

        ``not_since``: if this flow went to this group at or after then, raise
        RecentSurveyError naming that survey (None: send regardless). ``repeating``: the
        survey a confirmed repeat was asked about; if it is no longer the latest of this flow
        and group, raise StaleSurveyError (it was sent again meanwhile).
        """
        now = now or utcnow()
        with self._db.begin() as conn:
            if event_key is not None and not _claim(conn, event_key, now):
                return None
            _lock_group(conn, group.id)
            latest = _latest(conn, flow_id, group.id)
            if repeating is not None and (latest is None or latest.id != repeating):
                raise StaleSurveyError(
                    f"{flow_id} was sent to {group.name} again since you were asked"
                )
            if latest is not None and not_since is not None and latest.sent_at >= not_since:
                raise RecentSurveyError(latest)
            survey_id = conn.execute(
                insert(survey).returning(survey.c.id),
                {"flow_id": flow_id, "group_id": group.id, "sent_by": sent_by, "sent_at": now},
            ).scalar_one()
            students = select(
                literal(survey_id),
                group_member.c.person_id,
                literal(flow_id),
                literal(SURVEY_OCCURRENCE),
                literal(now, due_start.c.due_at.type),
                literal(wake_at or now, due_start.c.wake_at.type),
            ).where(
                group_member.c.group_id == group.id,
                _is_student(group_member.c.person_id),
                _is_active(group_member.c.person_id),
            )
            conn.execute(
                insert(due_start).from_select(
                    ["survey_id", "person_id", "flow_id", "occurrence", "due_at", "wake_at"],
                    students,
                )
            )
            people = list(
                conn.scalars(
                    select(due_start.c.person_id)
                    .where(due_start.c.survey_id == survey_id)
                    .order_by(due_start.c.person_id)
                )
            )
            record = SurveyRecord(survey_id, flow_id, group, sent_by, now)
        return record, people

    def get(self, survey_id: int) -> SurveyRecord:
        """The survey with this id, or UnknownRecordError."""
        with self._db.read() as conn:
            row = conn.execute(_SURVEYS.where(survey.c.id == survey_id)).first()
        if row is None:
            raise UnknownRecordError(f"no survey {survey_id}")
        return _record(row)

    def latest(self, flow_id: str, group_id: int) -> SurveyRecord | None:
        """The survey of this flow most recently sent to this group, if any."""
        with self._db.read() as conn:
            return _latest(conn, flow_id, group_id)

    def counts(self, survey_id: int) -> SurveyCounts:
        """The survey's live counts (see ``SurveyCounts``).

        ``no_account``, ``opted_out`` and ``unreachable`` count the students it has not
        reached and cannot now: waiting for a chat account, stopped the bot, or every account
        blocked; students who finished it are never among them.
        """
        c, p, d = conversation, person, due_start
        has_account = exists().where(channel_identity.c.person_id == d.c.person_id)
        reachable = exists().where(
            channel_identity.c.person_id == d.c.person_id,
            channel_identity.c.unreachable.is_(False),
        )
        unfinished = c.c.id.is_(None) | c.c.status.not_in(_FINISHED)
        under_way = c.c.status.in_(_UNDER_WAY)
        stmt = (
            select(
                func.count(c.c.id),
                _total(c.c.status == ConversationStatus.COMPLETED.value),
                _total(c.c.status == ConversationStatus.EXPIRED.value),
                _total(under_way),
                _total(under_way & ~has_account),
                _total(p.c.opted_out & unfinished),
                _total(~p.c.opted_out & unfinished & has_account & ~reachable),
            )
            .select_from(d)
            .join(p, p.c.id == d.c.person_id)
            .outerjoin(c, and_(c.c.survey_id == d.c.survey_id, c.c.person_id == d.c.person_id))
            .where(d.c.survey_id == survey_id)
        )
        with self._db.read() as conn:
            if conn.execute(select(survey.c.id).where(survey.c.id == survey_id)).first() is None:
                raise UnknownRecordError(f"no survey {survey_id}")
            row = conn.execute(stmt).one()
        return SurveyCounts(*(int(value or 0) for value in row))

    def responses(self, survey_id: int) -> tuple[SurveyResponse, ...]:
        """The survey's responses, its completed conversations, in the order they began.

        Two statements whatever their number: the conversations with their people, then the
        answers of all of them. ``answer`` logs every answer given: a step answered again
        after ``/back`` counts with its last answer, and one skipped or taken back (its last
        row not "answered") with none.
        """
        c = conversation
        completed = (c.c.survey_id == survey_id) & (
            c.c.status == ConversationStatus.COMPLETED.value
        )
        latest = (
            select(func.max(answer.c.id))
            .join(c, c.c.id == answer.c.conversation_id)
            .where(completed)
            .group_by(answer.c.conversation_id, answer.c.step_id, answer.c.iteration)
        )
        with self._db.read() as conn:
            people = conn.execute(
                select(c.c.id, c.c.person_id, person.c.handle, person.c.display_name)
                .join(person, person.c.id == c.c.person_id)
                .where(completed)
                .order_by(c.c.created_at, c.c.id)
            ).all()
            rows = conn.execute(
                select(
                    answer.c.conversation_id, answer.c.step_id, answer.c.iteration, answer.c.value
                )
                .where(answer.c.id.in_(latest.scalar_subquery()), answer.c.status == _ANSWERED)
                .order_by(answer.c.id)
            ).all()
        answers: dict[int, list[SurveyAnswer]] = {row.id: [] for row in people}
        for row in rows:  # a conversation completed between the two reads is not a response
            given = answers.get(row.conversation_id)
            if given is not None:
                given.append(SurveyAnswer(row.step_id, row.iteration, loads(row.value)))
        return tuple(
            SurveyResponse(
                row.id, row.person_id, row.handle, row.display_name, tuple(answers[row.id])
            )
            for row in people
        )

    def unanswered(self, survey_id: int) -> list[tuple[int, int]]:
        """The (person id, conversation id) of the survey's conversations still waiting for
        their student's answers (active or paused, and the student has not opted out): whom
        a reminder is for, in person id order."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(conversation.c.person_id, conversation.c.id)
                .join(person, person.c.id == conversation.c.person_id)
                .where(
                    conversation.c.survey_id == survey_id,
                    conversation.c.status.in_(_UNDER_WAY),
                    person.c.opted_out.is_(False),
                    person.c.active,
                )
                .order_by(conversation.c.person_id, conversation.c.id)
            )
            return [(person_id, conversation_id) for person_id, conversation_id in rows]

    def settle(self, survey_id: int) -> None:
        """After the sender started the survey's students: nothing more to do for any of
        them but those waiting for their other conversation to end (the scheduler starts
        those when it does)."""
        with self._db.begin() as conn:
            conn.execute(
                update(due_start)
                .where(due_start.c.survey_id == survey_id, due_start.c.waiting.is_(None))
                .values(wake_at=None)
            )


def _claim(conn: Connection, key: str, now: datetime) -> bool:
    """Record a chat message's event key as processed; False when it was already (as turns
    do, ``Turn.claim_event``)."""
    sql = Sql(conn)
    return sql.execute(CLAIM_EVENT, {"key": key, "now": sql.time(now)}) == 1


def _total(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _is_student(person_id: Any) -> Any:
    return exists().where(person_role.c.person_id == person_id, person_role.c.role == "student")


def _is_active(person_id: Any) -> Any:
    """Still on the roster: a survey leaves out whoever left it (their data stays)."""
    return exists().where(person.c.id == person_id, person.c.active)


def _lock_group(conn: Connection, group_id: int) -> None:
    """Serialise sends to one group (PostgreSQL; SQLite's writer already holds the database)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            select(student_group.c.id).where(student_group.c.id == group_id).with_for_update()
        )


def _latest(conn: Connection, flow_id: str, group_id: int) -> SurveyRecord | None:
    row = conn.execute(
        _SURVEYS.where(survey.c.flow_id == flow_id, survey.c.group_id == group_id)
        .order_by(survey.c.sent_at.desc(), survey.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _record(row)
