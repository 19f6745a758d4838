"""A fan-out in bulk: many linked students, each with proactive messages queued.

What a scheduled check-in leaves in the outbox for delivery (the flow's opening, queued on
the bot's initiative, due at once), built in bulk so that tests and ``bench/fanout.py`` can
make thousands of students in a moment (tests of the scheduler itself start real ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select

from dialogues import Option, Reply, ReplyKind
from storage import IMMEDIATELY, Database
from storage._outbox import queue_replies
from storage._sql import Sql
from storage._tables import channel_identity, person, person_role, utcnow

TELEGRAM_FIRST_ID = 700_000
"""Telegram user (and private chat) id of the first student a fan-out adds."""

# The opening of `weekly_checkin`: a greeting, then its first question with buttons.
OPENING = (
    Reply("Hi! 👋 Time for your weekly check-in, about 3 minutes."),
    Reply(
        "How have you been feeling this week?",
        kind=ReplyKind.CHOICE,
        options=tuple(Option(str(n), str(n)) for n in range(1, 6)),
        step_id="mood",
    ),
)


@dataclass(frozen=True, slots=True)
class Student:
    person_id: int
    user_id: str
    address: str  # where their messages go (a Telegram chat id, a Slack DM channel id)


def add_students(
    db: Database, platform: str, count: int, *, start: int = 0, workspace: str = ""
) -> list[Student]:
    """``count`` students linked to ``platform`` accounts, in one transaction; the ``start``-th
    and on (call again with another ``start`` for more).

    Telegram: user ids from ``TELEGRAM_FIRST_ID`` (their chat ids too); Slack: ``U…`` users
    whose DM is ``D…`` (the fake Web API's rule).
    """
    now = utcnow()
    numbers = range(start, start + count)
    handles = [f"{platform}{n:05d}" for n in numbers]
    with db.begin() as conn:
        conn.execute(
            insert(person),
            [
                {
                    "handle": h,
                    "display_name": f"Student {h}",
                    "first_name": "Student",
                    "timezone": None,
                    "language": "en",
                    "opted_out": False,
                    "created_at": now,
                    "email": None,
                }
                for h in handles
            ],
        )
        ids = dict(
            conn.execute(
                select(person.c.handle, person.c.id).where(person.c.handle.in_(handles))
            ).all()
        )
        conn.execute(
            insert(person_role), [{"person_id": ids[h], "role": "student"} for h in handles]
        )
        students = [_student(platform, ids[h], n) for n, h in zip(numbers, handles, strict=True)]
        conn.execute(
            insert(channel_identity),
            [
                {
                    "platform": platform,
                    "workspace": workspace,
                    "platform_user_id": s.user_id,
                    "chat_id": s.address,
                    "person_id": s.person_id,
                    "unreachable": False,
                    "created_at": now,
                }
                for s in students
            ],
        )
    return students


def _student(platform: str, person_id: int, n: int) -> Student:
    if platform == "telegram":
        user = str(TELEGRAM_FIRST_ID + n)
        return Student(person_id, user, user)
    user = f"U{n:08d}"
    return Student(person_id, user, "D" + user[1:])


def queue_fanout(
    db: Database,
    students: Sequence[Student],
    platform: str,
    replies: Sequence[Reply] = OPENING,
) -> list[int]:
    """Queue ``replies`` to every student as proactive messages, due at once; the outbox ids
    (in one transaction, like a scheduler's batch)."""
    ids: list[int] = []
    now = utcnow()
    with db.begin() as conn:
        sql = Sql(conn)
        for student in students:
            ids += queue_replies(
                sql,
                replies,
                person_id=student.person_id,
                conversation_id=None,
                platform=platform,
                address=student.address,
                now=now,
                not_before=IMMEDIATELY,
                proactive=True,
            )
    return ids
