"""A person's data as a whole: export it, erase it, and let transcripts age out (retention).

``PARTS`` says, table by table, which rows are a person's: those that name them, and those
that hang off their conversations, goals and check-ins. Export reads exactly those rows and
erasure deletes exactly those, children first, in one transaction. ``UNLINKS`` are columns
that name a person in a row that is someone else's (a survey a teacher sent, an audit row of
what a teacher viewed): erasure sets them to NULL and keeps the row. Messages to others about
the person (``outbox_subject``, ``ABOUT_THEM``) are erased whole but exported as metadata
only: their content is the recipient's. A test walks the schema's foreign keys and fails on
any table reaching ``person`` that neither names.

Erasure deletes the person row too: nothing references it afterwards, so no "erased" state
has to be known by every query that lists people. What stays is an ``erasure_receipt``: the
handle, the former id, counts per table, when and by whom; no content.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)

from dialogues import ConversationStatus

from ._database import Database
from ._people import load_person, normalise_handle
from ._safety import ERASED_STAFF, SAFETY_ALERT, notice_status
from ._tables import (
    action_step,
    advisor_link,
    answer,
    artifact,
    audit_log,
    channel_identity,
    checkin,
    checkin_goal_update,
    consent,
    conversation,
    conversation_answer,
    conversation_frame,
    due_start,
    dumps,
    erasure_receipt,
    failed_inbound,
    goal,
    group_member,
    housekeeping,
    inbound_event,
    invite_code,
    loads,
    outbox,
    outbox_subject,
    person,
    person_role,
    profile_fact,
    reflection,
    schedule,
    student_group,
    survey,
)
from .errors import UnknownPersonError

__all__ = [
    "ABOUT_THEM",
    "BLANKED",
    "PARTS",
    "UNLINKS",
    "ErasureReceipt",
    "PersonDataStore",
    "PruneReport",
]

_Where = Callable[[int], ColumnElement[bool]]
_Eraser = Callable[[Connection, int], int]
_Lister = Callable[[Connection, int], list[dict[str, Any]]]

ABOUT_THEM: Final = "outbox (about them, to others)"
"""The export's and the receipt's key for messages to other people about the person (a
safety notice to a counselor, a card or summary to an advisor): see ``outbox_subject``."""

_ENDED: Final = tuple(s.value for s in ConversationStatus if not s.is_open)
_PRUNE: Final = "prune"
_BLANK: Final = dumps({})
BLANKED: Final = "outbox (safety notices blanked)"
"""A prune's count of safety notices whose text it blanked (their rows and status stay)."""
_DAY: Final = timedelta(days=1)
# Columns whose text is JSON (``dumps``): exported as the values they hold.
_JSON_COLUMNS: Final = frozenset(
    {
        "profile_fact.value",
        "checkin.mood",
        "checkin.energy",
        "checkin_goal_update.progress",
        "reflection.fields",
        "conversation.state",
        "answer.value",
        "conversation_answer.value",
        "outbox.payload",
        "failed_inbound.visitor",
        "failed_inbound.inbound",
        "audit_log.detail",
    }
)


def _conversations(pid: int) -> Select[tuple[int]]:
    return select(conversation.c.id).where(conversation.c.person_id == pid)


def _of_person_or_conversation(table: Table) -> _Where:
    return lambda pid: or_(
        table.c.person_id == pid, table.c.conversation_id.in_(_conversations(pid))
    )


def _goals(pid: int) -> Select[tuple[int]]:
    return select(goal.c.id).where(_of_person_or_conversation(goal)(pid))


def _checkins(pid: int) -> Select[tuple[int]]:
    return select(checkin.c.id).where(_of_person_or_conversation(checkin)(pid))


def _in_conversations(table: Table) -> _Where:
    return lambda pid: table.c.conversation_id.in_(_conversations(pid))


def _named_by(*columns: Column[Any]) -> _Where:
    return lambda pid: or_(*(c == pid for c in columns))


@dataclass(frozen=True, slots=True)
class Part:
    """A table's rows that are a person's (``where``, given their id). ``erase`` and
    ``export`` replace deleting and listing those rows where that is not the whole story
    (``ABOUT_THEM``); ``key`` names them in the export and the receipt."""

    table: Table
    where: _Where
    key: str = ""
    erase: _Eraser | None = None
    export: _Lister | None = None

    @property
    def name(self) -> str:
        return self.key or self.table.name


def _about_them(pid: int) -> Select[tuple[int]]:
    return select(outbox_subject.c.outbox_id).where(outbox_subject.c.person_id == pid)


def _erase_about_them(conn: Connection, pid: int) -> int:
    """Messages to others about the person go whole (their subject rows with them): they
    hold the person's words, which are the person's to have erased."""
    removed = conn.execute(delete(outbox).where(outbox.c.id.in_(_about_them(pid)))).rowcount
    conn.execute(delete(outbox_subject).where(outbox_subject.c.person_id == pid))
    return removed


def _list_about_them(conn: Connection, pid: int) -> list[dict[str, Any]]:
    """Messages to others about the person, as metadata only: the content is the
    recipient's message, and may tell of other people (a summary, survey results)."""
    query = (
        select(
            outbox.c.id, person.c.handle, outbox.c.platform, outbox.c.created_at, outbox.c.urgent
        )
        .join(person, person.c.id == outbox.c.person_id, isouter=True)
        .where(outbox.c.id.in_(_about_them(pid)))
        .order_by(outbox.c.id)
    )
    return [
        {
            "id": row.id,
            "to": row.handle,
            "platform": row.platform,
            "created_at": row.created_at.isoformat(),
            "kind": "safety notice" if row.urgent else "notice",
        }
        for row in conn.execute(query)
    ]


PARTS: Final[tuple[Part, ...]] = (
    Part(answer, _in_conversations(answer)),
    Part(conversation_answer, _in_conversations(conversation_answer)),
    Part(conversation_frame, _in_conversations(conversation_frame)),
    Part(
        checkin_goal_update,
        lambda pid: or_(
            checkin_goal_update.c.checkin_id.in_(_checkins(pid)),
            checkin_goal_update.c.goal_id.in_(_goals(pid)),
        ),
    ),
    Part(
        action_step,
        lambda pid: or_(
            action_step.c.goal_id.in_(_goals(pid)),
            action_step.c.conversation_id.in_(_conversations(pid)),
        ),
    ),
    Part(
        artifact,
        lambda pid: or_(
            _of_person_or_conversation(artifact)(pid), artifact.c.goal_id.in_(_goals(pid))
        ),
    ),
    Part(profile_fact, _of_person_or_conversation(profile_fact)),
    Part(checkin, _of_person_or_conversation(checkin)),
    Part(reflection, _of_person_or_conversation(reflection)),
    Part(goal, _of_person_or_conversation(goal)),
    Part(
        outbox_subject,
        _named_by(outbox_subject.c.person_id),
        key=ABOUT_THEM,
        erase=_erase_about_them,
        export=_list_about_them,
    ),
    Part(outbox, _of_person_or_conversation(outbox)),
    Part(failed_inbound, _named_by(failed_inbound.c.person_id)),
    Part(due_start, _named_by(due_start.c.person_id)),
    Part(conversation, _named_by(conversation.c.person_id)),
    Part(audit_log, _named_by(audit_log.c.subject_person_id)),
    Part(invite_code, _named_by(invite_code.c.person_id)),
    Part(consent, _named_by(consent.c.person_id)),
    Part(channel_identity, _named_by(channel_identity.c.person_id)),
    Part(group_member, _named_by(group_member.c.person_id)),
    Part(advisor_link, _named_by(advisor_link.c.advisor_id, advisor_link.c.student_id)),
    Part(person_role, _named_by(person_role.c.person_id)),
    Part(person, _named_by(person.c.id)),
)
"""Every table's rows that are a person's, in the order erasure deletes them (children
first: each subquery still finds its parents when it runs)."""

UNLINKS: Final[tuple[Column[Any], ...]] = (survey.c.sent_by, audit_log.c.actor_person_id)
"""Columns naming a person in rows that are someone else's: erasure sets them to NULL."""


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """What is left of an erased person: whose, when, by whom, and how many rows went."""

    person: str
    erased_at: datetime
    by: str
    counts: Mapping[str, int]
    scrubbed: bool = field(default=True, compare=False)
    """False when a SQLite reader elsewhere kept the WAL from being emptied (not stored)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "erased_at": self.erased_at.isoformat(),
            "by": self.by,
            "counts": dict(self.counts),
        }


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune removed: rows per table, before ``cutoff``."""

    cutoff: datetime
    counts: Mapping[str, int]
    scrubbed: bool = field(default=True, compare=False)
    """As ``ErasureReceipt.scrubbed`` (the daily prune overwrites, but does not VACUUM)."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff.isoformat(), "counts": dict(self.counts)}


class PersonDataStore:
    """Export, erasure and retention (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def export(self, handle: str) -> dict[str, Any]:
        """Every row held about the person, by table, in one consistent read.

        ``{"person": {...}, "groups": [names], "advisors": [handles], "advisees": [handles],
        "tables": {TABLE: [ROW]}}``; JSON columns as the values they hold, times in ISO 8601.
        """
        with self._db.read() as conn:
            pid = _person_id(conn, handle)
            record = load_person(conn, pid)
            assert record is not None
            email = conn.execute(select(person.c.email).where(person.c.id == pid)).scalar()
            return {
                "person": {**record.to_json(), "email": email},
                "groups": _group_names(conn, pid),
                "advisors": _handles(
                    conn, advisor_link.c.advisor_id, advisor_link.c.student_id, pid
                ),
                "advisees": _handles(
                    conn, advisor_link.c.student_id, advisor_link.c.advisor_id, pid
                ),
                "tables": {part.name: _listed(conn, part, pid) for part in PARTS},
            }

    def erase(self, handle: str, *, by: str, at: datetime) -> ErasureReceipt:
        """Delete everything of the person and write the receipt, in one transaction.

        On SQLite the transaction overwrites what it deletes (``secure_delete``), and the
        file is then rewritten (``Database.scrub``) so nothing erased stays in it or its WAL.
        """
        with self._db.begin() as conn:
            pid = _person_id(conn, handle)
            # The turn lock: a turn of theirs under way finishes first, none starts meanwhile.
            conn.execute(select(person.c.id).where(person.c.id == pid).with_for_update())
            record = load_person(conn, pid)
            assert record is not None
            with _overwriting(conn):
                _forget_in_schedules(conn, record.handle)
                _forget_in_safety_alerts(conn, pid, record.handle)
                for column in UNLINKS:
                    conn.execute(
                        update(column.table).where(column == pid).values({column.name: None})
                    )
                counts = {part.name: _erased(conn, part, pid) for part in PARTS}
                receipt = ErasureReceipt(record.handle, at, by, counts)
                conn.execute(
                    insert(erasure_receipt).values(
                        person_handle=record.handle,
                        person_ref=pid,
                        erased_at=at,
                        erased_by=by,
                        counts=dumps(counts),
                    )
                )
        return replace(receipt, scrubbed=self._db.scrub())

    def receipts(self, handle: str) -> list[ErasureReceipt]:
        """The receipts of erasures of people who had this handle, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(erasure_receipt)
                .where(erasure_receipt.c.person_handle == normalise_handle(handle))
                .order_by(erasure_receipt.c.id)
            ).all()
        return [
            ErasureReceipt(r.person_handle, r.erased_at, r.erased_by, loads(r.counts)) for r in rows
        ]

    def prune(self, now: datetime, *, keep: timedelta) -> PruneReport:
        """Remove transcripts and sent messages older than ``keep`` (see ``_prune``), then
        leave none of it in a SQLite file (``Database.scrub``)."""
        with self._db.begin() as conn, _overwriting(conn):
            report = _prune(conn, now - keep, now)
        return replace(report, scrubbed=self._db.scrub())

    def prune_if_due(self, now: datetime, *, keep: timedelta) -> PruneReport | None:
        """The running bot's daily prune: None when any process pruned in the last day.

        The claim and the prune are one transaction: a second process waits for the first's
        row lock (PostgreSQL) or write lock (SQLite), then finds the day claimed.
        """
        with self._db.read() as conn:  # most rounds: no write transaction at all
            last = conn.execute(
                select(housekeeping.c.last_run_at).where(housekeeping.c.task == _PRUNE)
            ).scalar()
        if last is not None and last > now - _DAY:
            return None
        with self._db.begin() as conn, _overwriting(conn):
            if not _claim(conn, _PRUNE, now):
                return None
            return _prune(conn, now - keep, now)


@contextmanager
def _overwriting(conn: Connection) -> Iterator[None]:
    """SQLite overwrites what this transaction deletes (``secure_delete``), on this pooled
    connection only while it lasts."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA secure_delete=ON")
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA secure_delete=OFF")


def _person_id(conn: Connection, handle: str) -> int:
    wanted = normalise_handle(handle)
    pid = conn.execute(select(person.c.id).where(person.c.handle == wanted)).scalar()
    if pid is None:
        raise UnknownPersonError(f"no person with handle {wanted!r}")
    return int(pid)


def _group_names(conn: Connection, pid: int) -> list[str]:
    query = (
        select(student_group.c.name)
        .join(group_member, group_member.c.group_id == student_group.c.id)
        .where(group_member.c.person_id == pid)
        .order_by(student_group.c.name)
    )
    return list(conn.execute(query).scalars())


def _handles(conn: Connection, other: Column[int], own: Column[int], pid: int) -> list[str]:
    query = (
        select(person.c.handle)
        .join(advisor_link, other == person.c.id)
        .where(own == pid)
        .order_by(person.c.handle)
    )
    return list(conn.execute(query).scalars())


def _listed(conn: Connection, part: Part, pid: int) -> list[dict[str, Any]]:
    if part.export is not None:
        return part.export(conn, pid)
    return list(_rows(conn, part.table, part.where(pid)))


def _erased(conn: Connection, part: Part, pid: int) -> int:
    if part.erase is not None:
        return part.erase(conn, pid)
    return int(conn.execute(delete(part.table).where(part.where(pid))).rowcount)


def _rows(conn: Connection, table: Table, where: ColumnElement[bool]) -> Iterator[dict[str, Any]]:
    order = list(table.primary_key.columns)
    for row in conn.execute(select(table).where(where).order_by(*order)).mappings():
        yield {name: _exported(table.name, name, value) for name, value in row.items()}


def _exported(table: str, column: str, value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) and f"{table}.{column}" in _JSON_COLUMNS:
        try:
            return loads(value)
        except ValueError:
            return value
    return value


def _forget_in_schedules(conn: Connection, handle: str) -> None:
    """Take the handle out of the audiences of schedules that name people."""
    for row in conn.execute(select(schedule.c.id, schedule.c.audience)).all():
        audience = loads(row.audience)
        people = audience.get("people") if isinstance(audience, dict) else None
        if isinstance(people, list) and handle in people:
            audience["people"] = [h for h in people if h != handle]
            conn.execute(
                update(schedule).where(schedule.c.id == row.id).values(audience=dumps(audience))
            )


def _forget_in_safety_alerts(conn: Connection, pid: int, handle: str) -> None:
    """Take the handle out of whom other students' safety alerts notified (their audit
    details): the entry stays as ``ERASED_STAFF``, with how far the notice had got, since
    its outbox rows go with the person."""
    rows = conn.execute(
        select(audit_log.c.id, audit_log.c.detail).where(
            audit_log.c.action == SAFETY_ALERT, audit_log.c.subject_person_id != pid
        )
    ).all()
    for row in rows:
        detail = loads(row.detail)
        notified = detail.get("notified") if isinstance(detail, dict) else None
        if not isinstance(notified, list) or not any(_names(n, handle) for n in notified):
            continue
        detail["notified"] = [
            {"person": ERASED_STAFF, "outbox_ids": [], "status": _notice_status(conn, n)}
            if _names(n, handle)
            else n
            for n in notified
        ]
        conn.execute(update(audit_log).where(audit_log.c.id == row.id).values(detail=dumps(detail)))


def _names(entry: Any, handle: str) -> bool:
    return isinstance(entry, dict) and entry.get("person") == handle


def _notice_status(conn: Connection, entry: dict[str, Any]) -> str:
    ids = entry.get("outbox_ids", [])
    found = dict(
        conn.execute(select(outbox.c.id, outbox.c.status).where(outbox.c.id.in_(ids))).all()
    )
    return notice_status([found.get(i) for i in ids])


def _claim(conn: Connection, task: str, now: datetime) -> bool:
    """Whether this transaction takes ``task`` for today (none did in the last day)."""
    known = conn.execute(select(housekeeping.c.task).where(housekeeping.c.task == task))
    if known.first() is None:
        conn.execute(_insert_ignoring_conflict(task, now - _DAY))
    claimed = conn.execute(
        update(housekeeping)
        .where(housekeeping.c.task == task, housekeeping.c.last_run_at <= now - _DAY)
        .values(last_run_at=now)
    )
    return claimed.rowcount == 1


def _insert_ignoring_conflict(task: str, at: datetime) -> Any:
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    # Both dialects spell ON CONFLICT DO NOTHING the same; PostgreSQL's construct compiles
    # on SQLite too.
    return pg_insert(housekeeping).values(task=task, last_run_at=at).on_conflict_do_nothing()


def _prune(conn: Connection, cutoff: datetime, now: datetime) -> PruneReport:
    """Transcripts and sent messages older than ``cutoff``; never the profile or plan.

    A transcript is what a conversation that ended (completed, expired) before the cutoff
    said on the way: its answer log, its archived answers and `/back` history, and the
    answers its state still holds (the conversation row stays: profile facts and plan rows
    name it as their source). Also processed-event keys, sent or dead outbox messages and
    parked messages (replayed or not) from before the cutoff. A safety notice's row stays,
    its text blanked: ``safety list`` reads how far the notice got from it.
    """
    ended = conn.execute(
        select(conversation.c.id, conversation.c.state).where(
            conversation.c.status.in_(_ENDED),
            conversation.c.updated_at < cutoff,
            conversation.c.pruned_at.is_(None),
        )
    ).all()
    counts: dict[str, int] = {}
    ids = [row.id for row in ended]
    for table in (answer, conversation_answer, conversation_frame):
        counts[table.name] = _delete_in(conn, table, table.c.conversation_id, ids)
    for row in ended:
        conn.execute(
            update(conversation)
            .where(conversation.c.id == row.id)
            .values(state=dumps(_without_transcript(loads(row.state))), pruned_at=now)
        )
    counts["conversation"] = len(ended)
    open_conversations = select(conversation.c.id).where(conversation.c.status.not_in(_ENDED))
    done = and_(
        outbox.c.status.in_(("sent", "dead")),
        outbox.c.created_at < cutoff,
        or_(
            outbox.c.conversation_id.is_(None),
            outbox.c.conversation_id.not_in(open_conversations),
        ),
    )
    counts["outbox"] = conn.execute(delete(outbox).where(done, outbox.c.urgent.is_(False))).rowcount
    counts[BLANKED] = conn.execute(
        update(outbox)
        .where(done, outbox.c.urgent.is_(True), outbox.c.payload != _BLANK)
        .values(payload=_BLANK)
    ).rowcount
    counts["inbound_event"] = conn.execute(
        delete(inbound_event).where(inbound_event.c.received_at < cutoff)
    ).rowcount
    counts["failed_inbound"] = conn.execute(
        delete(failed_inbound).where(
            or_(
                and_(failed_inbound.c.status == "replayed", failed_inbound.c.replayed_at < cutoff),
                and_(failed_inbound.c.status == "parked", failed_inbound.c.parked_at < cutoff),
            )
        )
    ).rowcount
    return PruneReport(cutoff, counts)


_PRUNE_CHUNK: Final = 500


def _delete_in(conn: Connection, table: Table, column: Column[int], ids: list[int]) -> int:
    removed = 0
    for start in range(0, len(ids), _PRUNE_CHUNK):
        chunk = ids[start : start + _PRUNE_CHUNK]
        removed += conn.execute(delete(table).where(column.in_(chunk))).rowcount
    return removed


def _without_transcript(state: Any) -> Any:
    """A saved conversation state with its answers and `/back` history gone (nothing is
    archived any more either): where it ended and how is kept."""
    if not isinstance(state, dict):
        return state
    return {
        **state,
        "answers": {},
        "history": [],
        "archived_answers": False,
        "archived_frames": 0,
    }
