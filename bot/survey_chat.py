"""The survey commands in chat: ``/survey FLOW GROUP`` and ``/survey status ID`` (Telegram),
``/profilebot survey ...`` (Slack), and the button that confirms a repeat.

Platform-neutral: the front desk routes the command and queues what comes back. Who may do
what is ``bot.roles``'s answer, as on the command line; a refusal is a polite reply.

A repeat within the week is asked about with a message of two buttons. The message is the
record of the question: its options name what each button does, and a press is honoured only
when that message was sent to the person pressing, recently, outside any conversation, and
was never answered before; the send then goes ahead only if no survey of that flow went to
that group since the one asked about. A stale, repeated or forged press changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from dialogues import Option, ProfilebotError, Reply, ReplyKind
from storage import OutboxRecord, PersonRecord, StaleSurveyError, Viewed, is_transient

from .app import App
from .audit import CHAT
from .notices import Notice
from .roles import Actor
from .survey_results import results_notice, survey_results
from .surveys import RepeatSurveyError, SendReport, Surveys

__all__ = ["AGAIN", "CANCEL", "PROMPT_TTL", "ChatAnswer", "SurveyChat", "polite"]

AGAIN: Final = "survey-again"
"""A confirm button's value: ``survey-again:<id of the survey asked about>``."""
CANCEL: Final = "cancel"
PROMPT_TTL: Final = timedelta(days=1)
"""How long a confirm button is honoured; after that the teacher sends the command again."""
STATUS: Final = "status"
RESULTS: Final = "results"
_SURVEY_ID: Final = re.compile(r"[0-9]{1,18}")


@dataclass(slots=True)
class ChatAnswer:
    """What to send back. ``claimed``: the chat message's event key is spent already (the
    survey's own transaction claimed it), so the replies go out without it; ``duplicate``:
    it was spent before (a redelivery), so nothing is sent; ``stale``: a press that changes
    nothing."""

    replies: list[Reply] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    """Sent after the replies, to the person's own chat (never a Slack channel's reply)."""
    about: tuple[int, ...] = ()
    """The people whose data the notices show (see ``bot.notice_delivery.queue_notice_in``)."""
    claimed: bool = False
    duplicate: bool = False
    stale: bool = False


class SurveyChat:
    """The survey commands for one platform (``prefix``: how it writes commands)."""

    def __init__(self, app: App, prefix: str) -> None:
        self._app = app
        self._prefix = prefix
        self._surveys = Surveys(app)

    def usage(self) -> str:
        p = self._prefix
        return (
            f"To send a survey to a class: {p}survey FLOW GROUP (for example "
            f"{p}survey weekly_checkin 7B). To see how it's going: {p}survey status ID. "
            f"To see its answers: {p}survey results ID."
        )

    def command(self, person: PersonRecord, argument: str, event_key: str | None) -> ChatAnswer:
        """``survey FLOW GROUP``, ``survey status ID`` or ``survey results ID`` from
        ``person``."""
        words = argument.split()
        actor = self._app.actor_of(person)
        verb = words[0].lower() if words else ""
        try:
            survey_id = _survey_id(words[1]) if len(words) == 2 else None
            if verb == STATUS and survey_id is not None:
                status = self._surveys.status(survey_id, actor=actor)
                return ChatAnswer([Reply(status.text())])
            if verb == RESULTS and survey_id is not None:
                results = survey_results(self._app, survey_id, actor=actor)
                self._app.audit.record(
                    actor, Viewed.SURVEY_RESULTS, results.shown, via=CHAT, survey=survey_id
                )
                return ChatAnswer(notices=[results_notice(results)], about=results.shown)
            if len(words) >= 2 and verb not in (STATUS, RESULTS):
                return self._send(actor, words[0], " ".join(words[1:]), event_key=event_key)
        except RepeatSurveyError as exc:
            return ChatAnswer([self._ask_again(exc)])
        except ProfilebotError as exc:
            return ChatAnswer([Reply(polite(exc))])
        return ChatAnswer([Reply(self.usage())])

    def press(self, person: PersonRecord, prompt: OutboxRecord, index: int) -> ChatAnswer:
        """A button of ``prompt`` pressed by ``person`` (the desk checked it was sent to them)."""
        if not 0 <= index < len(prompt.reply.options):
            return ChatAnswer(stale=True)
        if self._app.clock.now() - prompt.created_at > PROMPT_TTL:
            return ChatAnswer(stale=True)
        value = prompt.reply.options[index].value
        if value == CANCEL:
            return ChatAnswer([Reply("Okay, I won't send it again.")])
        action, _, earlier = value.partition(":")
        if action != AGAIN or _survey_id(earlier) is None:
            return ChatAnswer(stale=True)
        key = prompt_key(prompt.id)
        try:
            asked_about = self._surveys.survey(int(earlier))
            return self._send(
                self._app.actor_of(person),
                asked_about.flow_id,
                asked_about.group.name,
                repeating=asked_about.id,
                event_key=key,
            )
        except StaleSurveyError:
            return ChatAnswer(
                [Reply("It has been sent again since I asked, so I didn't send it once more.")]
            )
        except ProfilebotError as exc:
            return ChatAnswer([Reply(polite(exc))])

    def _send(
        self,
        actor: Actor,
        flow_id: str,
        group: str,
        *,
        repeating: int | None = None,
        event_key: str | None,
    ) -> ChatAnswer:
        report = self._surveys.send(
            flow_id,
            group,
            actor=actor,
            repeating=repeating,
            event_key=event_key,
        )
        if report is None:
            return ChatAnswer(duplicate=True, claimed=True)
        return ChatAnswer([Reply(self._sent_text(report))], claimed=True)

    def _sent_text(self, report: SendReport) -> str:
        line = report.line()
        return (
            f"{line[0].upper()}{line[1:]}. See how it's going with "
            f"{self._prefix}survey status {report.survey.id}."
        )

    def _ask_again(self, repeat: RepeatSurveyError) -> Reply:
        earlier = repeat.earlier
        return Reply(
            f"{earlier.flow_id} was sent to {earlier.group.name} on {earlier.sent_at:%A %d %B} "
            f"(survey {earlier.id}). Send it again?",
            kind=ReplyKind.CHOICE,
            options=(Option(f"{AGAIN}:{earlier.id}", "Send again"), Option(CANCEL, "Cancel")),
        )


def prompt_key(outbox_id: int) -> str:
    """The event key a press on a confirm message claims: each message is answered once."""
    return f"prompt:{outbox_id}"


def _survey_id(word: str) -> int | None:
    """A survey id as typed (ASCII digits, no longer than a stored id can be), else None:
    ``²`` is a digit to ``str.isdigit`` but no number to ``int``."""
    return int(word) if _SURVEY_ID.fullmatch(word) else None


def is_prompt(reply: Reply) -> bool:
    """Whether a message is one of this module's confirm questions."""
    return reply.kind is ReplyKind.CHOICE and any(
        o.value == CANCEL or o.value.startswith(f"{AGAIN}:") for o in reply.options
    )


def polite(error: ProfilebotError) -> str:
    """A refusal or a mistake (unknown flow, group, survey), said kindly; a database that is
    away is not the person's mistake: raised, so the message is tried again."""
    if is_transient(error):
        raise error
    text = str(error)
    if text.startswith("Sorry"):
        return text
    return f"Sorry, {text[0].lower()}{text[1:]}."
