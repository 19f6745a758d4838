"""The front desk: who is writing, and what a chat message means before it reaches a flow.

Every chat adapter (Telegram, Slack) translates a platform event into a ``Visitor`` and an
``Inbound`` and hands both here. The desk links accounts with invite codes, refuses
strangers politely (no data access), answers the menu commands (/profile, /goals,
/checkin, /help) and passes everything else to the conversation service. Every reply goes
through the outbox; the adapter's delivery worker sends it after the turn commits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final

from dialogues import Inbound, InboundKind, Reply, clean_text
from storage import (
    Account,
    FailedInboundRecord,
    InvalidInviteError,
    Letter,
    PersonRecord,
    UnknownPersonError,
    UnknownRecordError,
)

from .app import App
from .intake import Intake, sorry_text
from .roles import STAFF_ROLES
from .service import ClosedQuestion, TurnOutcome
from .survey_chat import ChatAnswer, SurveyChat, is_prompt, prompt_key
from .view_chat import ViewChat

__all__ = [
    "MENU",
    "SLACK_COMMAND",
    "STAFF_HELP_TEXT",
    "STAFF_MENU",
    "STAFF_ROLES",
    "SURVEY_COMMAND",
    "DeskOutcome",
    "FrontDesk",
    "MenuCommand",
    "Visitor",
    "desk_command",
    "desk_for",
]

log = logging.getLogger("profilebot.frontdesk")


@dataclass(frozen=True, slots=True)
class MenuCommand:
    name: str
    description: str


MENU: Final = (
    MenuCommand("profile", "See my learner profile"),
    MenuCommand("goals", "See my goals and plan"),
    MenuCommand("card", "Get my one-page card (PDF)"),
    MenuCommand("checkin", "Start a check-in now"),
    MenuCommand("newgoal", "Set a new goal"),
    MenuCommand("back", "Change my last answer"),
    MenuCommand("skip", "Skip this question"),
    MenuCommand("pause", "Take a break and carry on later"),
    MenuCommand("help", "What I can do"),
    MenuCommand("stop", "Stop this conversation"),
)
"""The commands a chat platform should offer in its menu (Telegram's ``setMyCommands``)."""

PROFILE_FLOW: Final = "this_is_me"
STARTERS: Final = {"checkin": "weekly_checkin", "newgoal": "goal_setting"}
"""Menu commands that start a conversation, and its flow."""
SURVEY_COMMAND: Final = "survey"
"""Staff: ``survey FLOW GROUP`` sends a survey, ``survey status ID`` shows how it is going."""
CARD_COMMAND: Final = "card"
"""``card`` sends the student their one-page card; ``card HANDLE`` a student's, to staff
who may see it."""
SUMMARY_COMMAND: Final = "summary"
"""Advisors: ``summary`` sends this week's summary of their advisees now."""
DESK_COMMANDS: Final = frozenset(
    {"profile", "goals", CARD_COMMAND, SUMMARY_COMMAND, SURVEY_COMMAND, *STARTERS}
)
"""Menu commands the desk answers itself, outside any conversation's turn."""
STAFF_MENU: Final = (
    *MENU[:-1],
    MenuCommand(SUMMARY_COMMAND, "My advisees' weekly summary, now"),
    MenuCommand(SURVEY_COMMAND, "Send a survey to a class, see how it is going or its results"),
    MENU[-1],
)
"""The menu staff get (Telegram sets it for their chat once they have joined)."""


TELEGRAM_JOIN_HINT: Final = (
    "Open the invite link your school gave you, or send /start followed by your invite code."
)
SLACK_COMMAND: Final = "/profilebot"
SLACK_JOIN_HINT: Final = (
    f"If your school gave you an invite code, send {SLACK_COMMAND} link followed by the code "
    "— or ask your advisor to put the email of your Slack account on the roster."
)


def stranger_text(join_hint: str) -> str:
    return (
        "Hi! I'm profilebot, your school's learning-profile helper. I don't know who you are "
        f"yet, so I can't show or save anything. {join_hint}"
    )


def help_text(prefix: str) -> str:
    """The menu, with commands written the way this platform takes them ("/", "/profilebot ")."""
    return (
        "Here's what I can do:\n"
        f"{prefix}profile – see your learner profile\n"
        f"{prefix}goals – see your goals and plan\n"
        f"{prefix}card – get your one-page card (a PDF) for a conference\n"
        f"{prefix}checkin – start a check-in now\n"
        f"{prefix}newgoal – set a new goal\n"
        "\n"
        f"While we talk: {prefix}back changes your last answer, {prefix}skip skips a question, "
        f"{prefix}pause takes a break, {prefix}stop ends the conversation, and {prefix}help "
        "shows this list."
    )


def staff_help_text(prefix: str) -> str:
    """The menu for teachers, advisors and admins: the student commands, then the staff ones."""
    return (
        f"{help_text(prefix)}\n\n"
        "For staff:\n"
        f"{prefix}survey FLOW GROUP – send a survey to a class (e.g. {prefix}survey "
        "weekly_checkin 7B)\n"
        f"{prefix}survey status ID – see how a survey is going\n"
        f"{prefix}survey results ID – see a survey's answers\n"
        f"{prefix}summary – your advisees' weekly summary, now\n"
        f"{prefix}card HANDLE – a student's one-page card"
    )


STRANGER_TEXT: Final = stranger_text(TELEGRAM_JOIN_HINT)
STAFF_HELP_TEXT: Final = staff_help_text("/")
HELP_TEXT: Final = help_text("/")
IDLE_TEXT: Final = "You're all caught up — nothing is waiting for you right now."
STALE_TEXT: Final = "That question is already closed — please answer the latest one."
BUSY_TEXT: Final = "Let's finish this conversation first, then ask me again. Here's where we were:"


def no_goals_hint(prefix: str) -> str:
    return f"Want to set one now? Send {prefix}newgoal."


NO_GOALS_HINT: Final = no_goals_hint("/")
JOIN_COMMANDS: Final = frozenset({"start", "link"})
STAFF_HOME_TEXT: Final = (
    "You're set up as staff. You can send your classes surveys and follow how they are going; "
    "your students' summaries will appear here as they arrive, and you can try everything a "
    "student sees."
)
_COMMAND_RE: Final = re.compile(r"/(\w+)(?:@\w+)?(?:\s+(.*))?$", re.DOTALL)

UNSUPPORTED_TEXT: Final = (
    "I can read text, button taps, photos and documents — not that kind of message, sorry."
)


@dataclass(frozen=True, slots=True)
class Visitor:
    """A platform user writing to the bot, and where replies to them go (``address``)."""

    platform: str
    user_id: str
    address: str
    workspace: str | None = None
    email: str | None = None
    """The email of the platform account, where the platform tells it (Slack's users.info)."""
    reply_to: str | None = None
    """Where answers outside a conversation go instead of ``address`` (a slash command's reply)."""

    def __post_init__(self) -> None:
        for name in ("user_id", "address", "workspace", "email", "reply_to"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, clean_text(value))

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Visitor:
        return cls(
            platform=str(data["platform"]),
            user_id=str(data["user_id"]),
            address=str(data["address"]),
            workspace=data.get("workspace"),
            email=data.get("email"),
            reply_to=data.get("reply_to"),
        )


@dataclass(slots=True)
class DeskOutcome:
    """What the desk did with one inbound message, for the adapter that brought it."""

    outbox_ids: list[int] = field(default_factory=list)
    person: PersonRecord | None = None
    duplicate: bool = False
    stale: bool = False
    closed: ClosedQuestion | None = None
    parked: bool = False
    """The message's turn kept failing: it was set aside and its sender got an apology."""


class FrontDesk:
    """Platform-neutral handling of chat messages for one platform.

    ``command_prefix`` is how this platform's users type commands (Telegram: "/checkin";
    Slack: "/profilebot checkin"); ``join_hint`` tells a stranger how to join here.
    """

    def __init__(
        self,
        app: App,
        platform: str,
        *,
        command_prefix: str = "/",
        join_hint: str = TELEGRAM_JOIN_HINT,
    ) -> None:
        self._app = app
        self._platform = platform
        self.help_text = help_text(command_prefix)
        self.staff_help_text = staff_help_text(command_prefix)
        self._surveys = SurveyChat(app, command_prefix)
        self._views = ViewChat(app, command_prefix)
        self.stranger_text = stranger_text(join_hint)
        self._no_goals_hint = no_goals_hint(command_prefix)
        self._intake = Intake(app.failed, apology=sorry_text(command_prefix))

    def receive(
        self,
        visitor: Visitor,
        inbound: Inbound,
        *,
        event_key: str | None = None,
        question_ref: int | None = None,
    ) -> DeskOutcome:
        """Handle one message, button press or command; every reply is queued, not sent.

        A turn that keeps failing is parked (``DeskOutcome.parked``) and the visitor gets an
        apology; a transient database failure is raised, for the adapter to try again later.

        Whatever the message does, its words are watched for safety phrases (``bot.safety``)
        once, in the transaction that claims its event: the turn's, or a turn of their own
        when the message is parked.
        """
        outcome = self._intake.take(
            lambda: self._receive(visitor, inbound, event_key, question_ref),
            letter=lambda: Letter(
                self._platform,
                inbound,
                visitor.to_json(),
                event_key=event_key,
                question_ref=question_ref,
                account=self._account(visitor),
            ),
            reply_to=visitor.reply_to or visitor.address,
            watch=self._watch_parked,
        )
        return DeskOutcome(parked=True) if outcome is None else outcome

    def replay(self, failed_id: int) -> tuple[FailedInboundRecord, DeskOutcome]:
        """Run a parked message of this platform again (``profilebot inbound retry``); it was
        watched for safety phrases when it was parked, so not again."""
        return self._intake.replay(failed_id, self._replay_letter)

    def _replay_letter(self, letter: Letter) -> DeskOutcome:
        visitor = Visitor.from_json(dict(letter.visitor))
        return self._receive(visitor, letter.inbound, None, letter.question_ref, watch=False)

    def _watch_parked(self, letter: Letter) -> None:
        """The safety watch of a message set aside: its support message goes where the
        apology goes, just before it."""
        visitor = Visitor.from_json(dict(letter.visitor))
        who = letter.person_id if letter.person_id is not None else self._account(visitor)
        with contextlib.suppress(UnknownPersonError):  # a stranger: nobody's to watch
            self._app.service.watch_parked(
                who,
                letter.inbound,
                platform=self._platform,
                address=visitor.reply_to or visitor.address,
                key=letter.event_key,
            )

    def _receive(
        self,
        visitor: Visitor,
        inbound: Inbound,
        event_key: str | None,
        question_ref: int | None,
        *,
        watch: bool = True,
    ) -> DeskOutcome:
        """One message; ``watch``: its words are watched for safety phrases, whichever turn
        takes them (the conversation's, a command's, a first message's)."""
        command, argument = desk_command(inbound)
        typed = inbound if watch else None
        if command in JOIN_COMMANDS:
            return self._start(visitor, argument, event_key, typed)
        if command in DESK_COMMANDS or (command == "help" and visitor.reply_to is not None):
            person = self._identify(visitor)
            if person is None:
                return self._stranger(visitor)
            return self._command(person, visitor, command, argument, event_key, typed)
        try:  # the usual case, an answer: the turn itself finds who is writing
            outcome = self._turn(
                self._account(visitor), visitor, inbound, event_key, question_ref, watch
            )
        except UnknownPersonError:
            placed = self._place(visitor)  # on the roster already: messages may have reached it
            if placed is None:
                person = self._identify(visitor)  # new here: linked by email where possible
                if person is None:
                    return self._stranger(visitor)
                return self._welcome(person, visitor, command, event_key, typed)
            outcome = self._turn(placed.id, visitor, inbound, event_key, question_ref, watch)
        person = outcome.person
        assert person is not None  # every turn reads its person
        if outcome.stale:  # the adapter says so where the tap happened (a toast)
            return DeskOutcome(person=person, stale=True)
        if not outcome.duplicate and outcome.conversation_id is None:  # none is open
            support = outcome.outbox_ids  # the turn's support message, if its words needed one
            if self._needs_profile(person):  # joined without /start: Slack, by email
                outcome = self._service_open(person, visitor, PROFILE_FLOW, None)
                return _after(support, self._after_turn(person, visitor, outcome))
            menu = self._help_for(person)
            text = menu if command == "help" else f"{IDLE_TEXT}\n\n{menu}"
            return _after(support, self._send(person, visitor, text, None))
        return self._after_turn(person, visitor, outcome)

    def _command(
        self,
        person: PersonRecord,
        visitor: Visitor,
        command: str | None,
        argument: str,
        event_key: str | None,
        typed: Inbound | None,
    ) -> DeskOutcome:
        """A menu command the desk answers itself (a card, help, a survey) or that starts a
        flow; whatever was typed after it is watched in the turn that answers it."""
        if command == SURVEY_COMMAND:
            answer = self._surveys.command(person, argument, event_key)
            return self._answer(person, visitor, answer, event_key, typed=typed)
        if command == CARD_COMMAND:
            answer = self._views.card(person, argument)
            return self._answer(person, visitor, answer, event_key, typed=typed)
        if command == SUMMARY_COMMAND:
            answer = self._views.summary(person, argument)
            return self._answer(person, visitor, answer, event_key, typed=typed)
        if command == "profile":
            return self._send(person, visitor, self._app.profile_card(person), event_key, typed)
        if command == "goals":
            return self._send(person, visitor, self._plan_card(person), event_key, typed)
        if command in STARTERS:
            outcome = self._service_open(
                person, visitor, STARTERS[command], event_key, busy_greeting=BUSY_TEXT, typed=typed
            )
            return self._after_turn(person, visitor, outcome)
        return self._send(person, visitor, self._help_for(person), event_key, typed)

    def _help_for(self, person: PersonRecord) -> str:
        return self.staff_help_text if STAFF_ROLES.intersection(person.roles) else self.help_text

    def press(self, visitor: Visitor, message_id: int, index: int) -> DeskOutcome:
        """A button pressed on a message the desk sent outside any conversation (a confirm
        question): honoured once, and only on a message that was sent to this visitor's
        person; anything else is ``stale`` and changes nothing."""
        person = self._app.people.by_identity(self._platform, visitor.workspace, visitor.user_id)
        if person is None:
            return DeskOutcome(stale=True)
        try:
            prompt = self._app.outbox.get(message_id)
        except UnknownRecordError:
            return DeskOutcome(person=person, stale=True)
        if (
            prompt.platform != self._platform
            or prompt.person_id != person.id
            or prompt.conversation_id is not None
            or prompt.notice is not None
            or not is_prompt(prompt.reply)
        ):
            return DeskOutcome(person=person, stale=True)
        answer = self._surveys.press(person, prompt, index)
        return self._answer(person, visitor, answer, prompt_key(prompt.id), pressed=True)

    def _answer(
        self,
        person: PersonRecord,
        visitor: Visitor,
        answer: ChatAnswer,
        event_key: str | None,
        *,
        pressed: bool = False,
        typed: Inbound | None = None,
    ) -> DeskOutcome:
        """Queue what a survey command or press answered (its event key claimed with it,
        unless the survey's own transaction claimed it). A press whose key was spent already
        answered the question before: ``stale``."""
        if answer.stale or answer.duplicate:
            stale = answer.stale or pressed
            return DeskOutcome(person=person, stale=stale, duplicate=answer.duplicate)
        outcome = self._app.service.send(
            person.id,
            answer.replies,
            platform=self._platform,
            address=visitor.reply_to or visitor.address,
            event_key=None if answer.claimed else event_key,
            notices=answer.notices,
            notice_address=visitor.address,
            about=answer.about,
            typed=typed,
        )
        return DeskOutcome(
            outbox_ids=outcome.outbox_ids,
            person=person,
            duplicate=outcome.duplicate,
            stale=pressed and outcome.duplicate,
        )

    def _turn(
        self,
        who: int | Account,
        visitor: Visitor,
        inbound: Inbound,
        event_key: str | None,
        question_ref: int | None,
        watch: bool,
    ) -> TurnOutcome:
        return self._app.service.handle(
            who,
            inbound,
            platform=self._platform,
            address=visitor.address,
            event_key=event_key,
            question_ref=question_ref,
            track_questions=True,
            watch=watch,
        )

    def _account(self, visitor: Visitor) -> Account:
        return Account(self._platform, visitor.workspace or "", visitor.user_id)

    def home(self, visitor: Visitor) -> list[str]:
        """What the visitor's home page shows (Slack's App Home): their cards, or how to join.

        Read-only and only the visitor's own data; nothing is queued.
        """
        person = self._identify(visitor)
        if person is None:
            return [self.stranger_text]
        sections = []
        if "student" in person.roles:
            sections += [self._app.profile_card(person), self._plan_card(person)]
        if STAFF_ROLES.intersection(person.roles):
            sections.append(f"{STAFF_HOME_TEXT}\n\n{self.staff_help_text}")
        else:
            sections.append(self.help_text)
        return sections

    def unsupported(self, visitor: Visitor) -> DeskOutcome:
        """A message kind the bot cannot read (a sticker, a voice note): say so, change nothing."""
        person = self._identify(visitor)
        if person is None:
            return self._stranger(visitor)
        return self._send(person, visitor, UNSUPPORTED_TEXT, None)

    def set_reachable(self, visitor: Visitor, reachable: bool) -> int:
        """The user blocked (False) or unblocked (True) the bot."""
        return self._app.people.set_reachable(
            self._platform, visitor.workspace, reachable=reachable, user_id=visitor.user_id
        )

    # -- joining -------------------------------------------------------------------------------

    def _start(
        self, visitor: Visitor, code: str, event_key: str | None, typed: Inbound | None
    ) -> DeskOutcome:
        person = self._identify(visitor)
        problem = None
        if code and person is None:
            try:
                person = self._app.invites.redeem(
                    code,
                    platform=self._platform,
                    workspace=visitor.workspace,
                    user_id=visitor.user_id,
                    chat_id=visitor.address,
                )
                log.info("%s user linked to person %s", self._platform, person.id)
            except InvalidInviteError as exc:
                problem = str(exc)
        if person is None:
            text = self.stranger_text
            if problem:
                text = f"Sorry, {problem}. Ask your advisor for a new invite link."
            return self._stranger(visitor, text)
        self._app.people.set_reachable(
            self._platform, visitor.workspace, reachable=True, user_id=visitor.user_id
        )
        outcome = self._open_waiting(person, visitor, event_key, typed)
        if outcome.duplicate or outcome.conversation_id is not None:
            return self._after_turn(person, visitor, outcome)
        greeting = (
            f"Welcome back, {person.first_name or person.display_name}! {self._help_for(person)}"
        )
        return _after(outcome.outbox_ids, self._send(person, visitor, greeting, None))

    def _welcome(
        self,
        person: PersonRecord,
        visitor: Visitor,
        command: str | None,
        event_key: str | None,
        typed: Inbound | None,
    ) -> DeskOutcome:
        """The first message of someone just linked (by email, or an account on the roster):
        whatever waits for them comes first; their message answers nothing they have seen,
        but its words are watched all the same."""
        outcome = self._open_waiting(person, visitor, event_key, typed)
        if outcome.duplicate or outcome.conversation_id is not None:
            return self._after_turn(person, visitor, outcome)
        menu = self._help_for(person)
        text = menu if command == "help" else f"{IDLE_TEXT}\n\n{menu}"
        return _after(outcome.outbox_ids, self._send(person, visitor, text, None))

    def _open_waiting(
        self, person: PersonRecord, visitor: Visitor, event_key: str | None, typed: Inbound | None
    ) -> TurnOutcome:
        """Resume the person's open conversation here (one started for them before they could
        be messaged, say: a survey, a scheduled check-in); else start "This is me" for a
        student without a profile; else nothing (``conversation_id`` None)."""
        profile = self._app.registry.get(PROFILE_FLOW) if self._needs_profile(person) else None
        return self._app.service.open(
            person.id,
            None,
            platform=self._platform,
            address=visitor.address,
            default_flow=profile,
            event_key=event_key,
            typed=typed,
        )

    def knows(self, visitor: Visitor) -> bool:
        """Whether the visitor is linked already (else an adapter may look up their email)."""
        return (
            self._app.people.by_identity(self._platform, visitor.workspace, visitor.user_id)
            is not None
        )

    def _identify(self, visitor: Visitor) -> PersonRecord | None:
        people = self._app.people
        person = people.by_identity(self._platform, visitor.workspace, visitor.user_id)
        if person is None:
            person = self._place(visitor)
        if person is None and visitor.email:
            person = people.link_by_email(
                visitor.email, self._platform, visitor.workspace, visitor.user_id, visitor.address
            )
            if person is not None:
                log.info("%s user linked to person %s by email", self._platform, person.id)
        return person

    def _place(self, visitor: Visitor) -> PersonRecord | None:
        """The person of an account linked from a roster before its workspace was known,
        now placed in the workspace it writes from."""
        if not visitor.workspace:
            return None
        return self._app.people.place_identity(
            self._platform, visitor.workspace, visitor.user_id, visitor.address
        )

    def _needs_profile(self, person: PersonRecord) -> bool:
        """A student whose profile is empty: the "This is me" interview comes first."""
        return "student" in person.roles and not self._app.profiles.current(person.id)

    def _stranger(self, visitor: Visitor, text: str | None = None) -> DeskOutcome:
        ids = self._app.outbox.queue(
            [Reply(text or self.stranger_text)],
            person_id=None,
            platform=self._platform,
            address=visitor.reply_to or visitor.address,
        )
        return DeskOutcome(outbox_ids=ids)

    # -- conversations -------------------------------------------------------------------------

    def _service_open(
        self,
        person: PersonRecord,
        visitor: Visitor,
        flow_id: str,
        event_key: str | None,
        *,
        busy_greeting: str | None = None,
        typed: Inbound | None = None,
    ) -> TurnOutcome:
        return self._app.service.open(
            person.id,
            self._app.registry.get(flow_id),
            platform=self._platform,
            address=visitor.address,
            event_key=event_key,
            busy_greeting=busy_greeting,
            typed=typed,
        )

    def _plan_card(self, person: PersonRecord) -> str:
        return self._app.plan_card(person, no_goals_hint=self._no_goals_hint)

    def _after_turn(
        self, person: PersonRecord, visitor: Visitor, outcome: TurnOutcome
    ) -> DeskOutcome:
        result = DeskOutcome(
            outbox_ids=list(outcome.outbox_ids),
            person=person,
            duplicate=outcome.duplicate,
            closed=outcome.closed,
        )
        if outcome.finished and outcome.flow is not None:
            card = self._app.card_after(outcome.flow, person)
            if card is not None:  # in the conversation's chat, not a command's private reply
                in_chat = dataclasses.replace(visitor, reply_to=None)
                result.outbox_ids += self._send(person, in_chat, card, None).outbox_ids
        return result

    def _send(
        self,
        person: PersonRecord,
        visitor: Visitor,
        text: str,
        event_key: str | None,
        typed: Inbound | None = None,
    ) -> DeskOutcome:
        outcome = self._app.service.send(
            person.id,
            [Reply(text)],
            platform=self._platform,
            address=visitor.reply_to or visitor.address,
            event_key=event_key,
            typed=typed,
        )
        return DeskOutcome(
            outbox_ids=outcome.outbox_ids, person=person, duplicate=outcome.duplicate
        )


def _after(first: list[int], outcome: DeskOutcome) -> DeskOutcome:
    """``outcome`` with the messages an earlier turn of the same message queued before it."""
    outcome.outbox_ids[:0] = first
    return outcome


def desk_for(app: App, platform: str) -> FrontDesk:
    """The desk of a chat platform, with its way of writing commands and of joining."""
    if platform == "slack":
        return FrontDesk(
            app, platform, command_prefix=f"{SLACK_COMMAND} ", join_hint=SLACK_JOIN_HINT
        )
    return FrontDesk(app, platform)


def desk_command(inbound: Inbound) -> tuple[str | None, str]:
    """The command a message names (``/goals``, ``/start CODE``, ``/help@bot``) and its argument.

    Typed ``/commands`` arrive as text on chat platforms; a platform's own command event
    (a Slack slash command) arrives as ``InboundKind.COMMAND``.
    """
    if inbound.kind is InboundKind.COMMAND:
        return (inbound.command or "").lower(), inbound.text.strip()
    if inbound.kind is not InboundKind.TEXT:
        return None, ""
    match = _COMMAND_RE.match(inbound.text.strip())
    if match is None:
        return None, ""
    return match[1].lower(), (match[2] or "").strip()
