"""The chat commands that show someone's data: ``/card`` (a student's one-page card as a PDF)
and ``/summary`` (an advisor's weekly summary with its chart).

Platform-neutral, like ``bot.survey_chat``: the front desk routes the command and queues the
answer. Who may see what is ``bot.roles``'s answer, asked by the view itself, exactly as on
the command line; a refusal is a polite reply and nothing is shown.
"""

from __future__ import annotations

from dialogues import ProfilebotError, Reply
from storage import PersonRecord, Viewed

from .app import App
from .audit import CHAT
from .charts import summary_chart
from .conference_card import card_pdf
from .errors import NotAllowedError
from .notices import FileKind, Notice, NoticeFile
from .summaries import build_summary
from .summary_render import summary_notice
from .survey_chat import ChatAnswer, polite

__all__ = ["ViewChat"]

PDF = "application/pdf"
FOR_ADVISORS = "Sorry, weekly summaries are for advisors: they sum up their students' check-ins."


class ViewChat:
    """``card [HANDLE]`` and ``summary [HANDLE]`` for one platform (``prefix``: how it writes
    commands)."""

    def __init__(self, app: App, prefix: str) -> None:
        self._app = app
        self._prefix = prefix

    def card(self, person: PersonRecord, argument: str) -> ChatAnswer:
        """``person``'s own card, or (``argument``: a handle) a student's they may see."""
        try:
            student = self._someone(person, argument, "card")
            actor = self._app.actor_of(person)
            pdf = card_pdf(self._app, student, actor=actor)
            self._app.audit.record(actor, Viewed.CARD, student, via=CHAT)
        except ProfilebotError as exc:
            return ChatAnswer([Reply(polite(exc))])
        mine = student.id == person.id
        title = "Your one-page card" if mine else f"{student.display_name}'s one-page card"
        file = NoticeFile(
            FileKind.DOCUMENT,
            f"card-{student.handle}.pdf",
            PDF,
            pdf,
            caption="For your student-led conference: print it or show it." if mine else "",
        )
        return ChatAnswer(notices=[Notice(title, files=(file,))], about=(student.id,))

    def summary(self, person: PersonRecord, argument: str) -> ChatAnswer:
        """This week's summary of ``person``'s advisees, with its chart; or (``argument``: an
        advisor's handle) that advisor's, for an admin."""
        if not argument.strip() and not self._app.actor_of(person).is_staff:
            return ChatAnswer([Reply(FOR_ADVISORS)])
        try:
            advisor = self._someone(person, argument, "summary")
            actor = self._app.actor_of(person)
            summary = build_summary(self._app, advisor, actor=actor)
            self._app.audit.record(
                actor,
                Viewed.SUMMARY,
                [s.person for s in summary.students],
                via=CHAT,
                advisor=advisor.id,
                week=summary.week,
            )
        except ProfilebotError as exc:
            return ChatAnswer([Reply(polite(exc))])
        if not summary.students:
            whose = "You have" if advisor.id == person.id else f"{advisor.display_name} has"
            return ChatAnswer([Reply(f"{whose} no advisees yet, so there is nothing to sum up.")])
        return ChatAnswer(
            notices=[summary_notice(summary, summary_chart(summary))],
            about=tuple(s.person.id for s in summary.students),
        )

    def _someone(self, person: PersonRecord, argument: str, command: str) -> PersonRecord:
        """Whose view: ``person``'s own, or the one ``argument`` names. Only staff may name
        someone else: a student naming a classmate learns nothing, not even whether that
        handle exists."""
        handle = argument.strip()
        if not handle or handle == person.handle:
            return person
        if not self._app.actor_of(person).is_staff:
            raise NotAllowedError(
                f"Sorry, you can only see your own: send {self._prefix}{command}."
            )
        return self._app.people.get(handle)
