"""Surveys: a teacher sends a flow to a class, sees how far it got, reminds who has not answered.

The command line and the chat commands both come here; who may do what is ``bot.roles``'s
answer. Each student's conversation starts the way the scheduler starts one
(``bot.outreach``): exactly once per survey and student; a student busy with another
conversation gets it when that one ends; in quiet hours it is started and its messages wait
for the morning; a student without a chat account yet gets it when they link one; a student
who opted out is skipped.

The same flow sent to the same group within ``REPEAT_WINDOW`` needs a second "yes" (``again``
on the command line, a button in chat): double sends happen by accident.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from dialogues import ConversationStatus, ProfilebotError
from storage import (
    IMMEDIATELY,
    NO_ACCOUNT,
    RecentSurveyError,
    SurveyCounts,
    SurveyRecord,
    SurveyStore,
    Turn,
)

from .app import App
from .outreach import Decision, Origin, Outreach
from .progress import Progress
from .roles import Action, Actor, require
from .scheduler import REMINDER

__all__ = [
    "REPEAT_WINDOW",
    "RemindReport",
    "RepeatSurveyError",
    "SendReport",
    "SurveyStatus",
    "Surveys",
]

REPEAT_WINDOW: Final = timedelta(days=7)
SEND_GRACE: Final = timedelta(minutes=10)
"""How long after a send the scheduler leaves its students alone: should the send die
halfway, the scheduler starts whoever it had not reached (each start happens once)."""
_UNANSWERED: Final = (ConversationStatus.ACTIVE, ConversationStatus.PAUSED)
_BATCH: Final = 100  # reminders per transaction: a student's own turn waits at most that


class RepeatSurveyError(ProfilebotError):
    """The flow went to the group within ``REPEAT_WINDOW``: sending it again needs a yes."""

    def __init__(self, earlier: SurveyRecord) -> None:
        self.earlier = earlier
        super().__init__(
            f"{earlier.flow_id} was sent to {earlier.group.name} on "
            f"{earlier.sent_at:%Y-%m-%d} (survey {earlier.id}); to send it again within "
            f"{REPEAT_WINDOW.days} days, add --again"
        )


@dataclass(frozen=True, slots=True)
class SendReport:
    """What sending a survey did. ``started`` counts every conversation started, ``no_account``
    those of them waiting for a chat account; ``skipped`` the students who opted out;
    ``waiting`` those busy with another conversation, who get it when that one ends."""

    survey: SurveyRecord
    started: int = 0
    no_account: int = 0
    skipped: int = 0
    waiting: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.survey.id,
            "started": self.started,
            "no_account": self.no_account,
            "skipped": self.skipped,
        }

    def line(self) -> str:
        parts = [f"{self.started} started"]
        if self.no_account:
            verb = "waits" if self.no_account == 1 else "wait"
            parts.append(f"{self.no_account} of them {verb} for a chat account")
        if self.waiting:
            parts.append(f"{self.waiting} busy (they get it when they finish what they're doing)")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (opted out)")
        survey = self.survey
        return f"sent {survey.flow_id} to {survey.group.name} (survey {survey.id}): " + ", ".join(
            parts
        )


@dataclass(frozen=True, slots=True)
class SurveyStatus:
    survey: SurveyRecord
    counts: SurveyCounts

    def to_json(self) -> dict[str, Any]:
        survey = self.survey
        return {
            "id": survey.id,
            "flow": survey.flow_id,
            "group": survey.group.name,
            "sent_at": survey.sent_at.isoformat(),
            "counts": self.counts.to_json(),
        }

    def text(self) -> str:
        survey, counts = self.survey, self.counts
        lines = [
            f"Survey {survey.id}: {survey.flow_id} to {survey.group.name}, sent "
            f"{survey.sent_at:%Y-%m-%d %H:%M} UTC",
            f"{counts.completed} completed, {counts.in_progress} in progress, "
            f"{counts.expired} expired (of {counts.started} started)",
        ]
        missing = [
            (counts.no_account, "waiting for a chat account"),
            (counts.opted_out, "opted out"),
            (counts.unreachable, "unreachable"),
        ]
        if any(n for n, _ in missing):
            lines.append(", ".join(f"{n} {what}" for n, what in missing))
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class RemindReport:
    """What ``survey remind`` did: reminders queued now, and those held for the morning
    (the student is in quiet hours)."""

    survey: SurveyRecord
    reminded: int
    held: int

    def line(self) -> str:
        held = f" ({self.held} held until the morning: quiet hours)" if self.held else ""
        return f"reminded {self.reminded} of survey {self.survey.id}'s non-responders{held}"


class Surveys:
    """Sending surveys, their status and reminders, for the CLI and the chat commands."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._store = SurveyStore(app.db)

    def send(
        self,
        flow_id: str,
        group_name: str,
        *,
        actor: Actor | None,
        again: bool = False,
        repeating: int | None = None,
        event_key: str | None = None,
        progress: Progress | None = None,
    ) -> SendReport | None:
        """Send ``flow_id`` to every student of the group (see the module docstring).

        ``again`` sends even within ``REPEAT_WINDOW`` of the last time (else
        RepeatSurveyError); ``repeating`` is the earlier survey a chat confirmation was
        about (StaleSurveyError when it has been sent again meanwhile). None when
        ``event_key`` was used already (a platform's redelivery): nothing was sent.
        """
        app = self._app
        flow = app.registry.get(flow_id)
        group = app.roster.group(group_name)
        require(actor, Action.SEND_SURVEY, group)
        now = app.clock.now()
        try:
            sent = self._store.send(
                flow.id,
                group,
                sent_by=None if actor is None else actor.person.id,
                now=now,
                not_since=None if again or repeating is not None else now - REPEAT_WINDOW,
                repeating=repeating,
                event_key=event_key,
                wake_at=now + SEND_GRACE,
            )
        except RecentSurveyError as exc:
            raise RepeatSurveyError(exc.earlier) from None
        if sent is None:
            return None
        survey, students = sent
        return self._start_all(survey, students, progress)

    def survey(self, survey_id: int) -> SurveyRecord:
        """The survey with this id (UnknownRecordError), whoever asks: no counts in it."""
        return self._store.get(survey_id)

    def status(self, survey_id: int, *, actor: Actor | None) -> SurveyStatus:
        survey = self._store.get(survey_id)
        require(actor, Action.VIEW_SURVEY, survey)
        return SurveyStatus(survey, self._store.counts(survey_id))

    def remind(self, survey_id: int, *, actor: Actor | None) -> RemindReport:
        survey = self._store.get(survey_id)
        require(actor, Action.REMIND_SURVEY, survey)
        return self._remind_all(survey, self._store.unanswered(survey_id))

    # -- the fan-out -----------------------------------------------------------------------

    def _start_all(
        self,
        survey: SurveyRecord,
        students: list[int],
        progress: Progress | None,
    ) -> SendReport:
        """Start the survey's flow for each student (``bot.outreach``); a student in quiet
        hours gets its first messages in the morning."""
        app = self._app
        outreach = Outreach(app)
        if progress is not None:
            progress.update(total=len(students))
        starts = outreach.start_many(
            students,
            app.registry.get(survey.flow_id),
            Origin.survey(survey.id),
            not_before=outreach.quiet_hold,
            progress=None if progress is None else progress.completed,
        )
        self._store.settle(survey.id)
        decisions = Counter(start.decision for start in starts)
        return SendReport(
            survey,
            started=decisions[Decision.STARTED] + decisions[Decision.DUPLICATE],
            no_account=sum(1 for s in starts if s.started and s.reason == NO_ACCOUNT),
            skipped=decisions[Decision.OPTED_OUT] + decisions[Decision.LEFT],
            waiting=decisions[Decision.BUSY],
        )

    def _remind_all(self, survey: SurveyRecord, waiting: list[tuple[int, int]]) -> RemindReport:
        """Ask each (person, conversation) its waiting question again, now, proactively; in
        the student's quiet hours the reminder waits for the morning. The conversations'
        own reminder timers are left as they are."""
        app = self._app
        outreach = Outreach(app)
        reminded = held = 0
        for first in range(0, len(waiting), _BATCH):
            with app.service.store.batch(now=app.clock.now()) as batch:
                for person_id, conversation_id in waiting[first : first + _BATCH]:
                    turn = batch.turn(person_id)
                    hold = self._remind(turn, conversation_id, outreach.quiet_hold(turn.person))
                    if hold is not None:
                        reminded += 1
                        held += hold != IMMEDIATELY
        return RemindReport(survey, reminded, held)

    def _remind(self, turn: Turn, conversation_id: int, hold: datetime) -> datetime | None:
        """One reminder in ``turn``; returns its hold, or None when there was none to send
        (answered meanwhile, opted out, no chat to send it to)."""
        timed = turn.timed_conversation(conversation_id)
        if timed is None or timed.status not in _UNANSWERED or turn.person.opted_out:
            return None
        chat = turn.reach().chat
        if chat is None:
            return None
        service = self._app.service
        engine = service.engine_for(turn, timed.record)
        result = engine.resume(timed.record.state, service.context(turn), REMINDER)
        turn.save(
            timed.record,
            result,
            platform=chat.platform,
            address=chat.address,
            follow_up=timed.follow_up,
            not_before=hold,
            proactive=True,
        )
        return hold
