"""Who may do what: the one place every command and chat view asks.

``can(actor, action, subject)`` answers; ``require`` raises ``NotAllowedError`` with a polite
line for the person refused. An ``Actor`` is a person with what their permissions depend on
(their roles, the groups they belong to: a teacher's are the groups they teach); ``None`` is
the command line without ``--as``, the administrator running it, who may do everything.

Each ``Action`` has one rule and one refusal. A new view (an advisor's summary, a survey's
results, a student's profile) is a new action here with its rule: its command and its chat
command ask ``can``/``require`` like the survey ones do, never a check of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeAlias

from storage import GroupRecord, PersonRecord, SurveyRecord

from .errors import NotAllowedError

__all__ = ["STAFF_ROLES", "Action", "Actor", "Subject", "can", "require"]

ADMIN: Final = "admin"
TEACHER: Final = "teacher"
COUNSELOR: Final = "counselor"
STAFF_ROLES: Final = frozenset({"advisor", "teacher", "admin"})
"""Who gets the staff menu and may name someone else in a chat view (``/card H``)."""


class Action(StrEnum):
    SEND_SURVEY = "survey.send"
    """Start a flow for every student of a group (subject: the group)."""
    VIEW_SURVEY = "survey.status"
    """See how far a survey has got (subject: the survey)."""
    REMIND_SURVEY = "survey.remind"
    """Remind a survey's non-responders now (subject: the survey)."""
    VIEW_RESULTS = "survey.results"
    """See a survey's answers (subject: the survey)."""
    VIEW_CARD = "profile.card"
    """See a student's one-page profile and plan (subject: the student)."""
    VIEW_SUMMARY = "summary.view"
    """See an advisor's weekly summary of their advisees (subject: the advisor)."""
    VIEW_PROFILE = "profile.show"
    """See a student's learner profile but for its private fields (subject: the student)."""
    VIEW_PRIVATE = "profile.private"
    """See the fields a student keeps private too (subject: the student)."""
    VIEW_PLAN = "plan.show"
    """See a student's learning plan (subject: the student)."""
    VIEW_AUDIT = "audit.view"
    """See who viewed a person's data (subject: that person)."""
    EXPORT_DATA = "person.export"
    """Export everything held about a person (subject: the person)."""
    ERASE_DATA = "person.erase"
    """Erase everything held about a person (subject: the person)."""
    VIEW_SAFETY_ALERTS = "safety.list"
    """See the safety alerts raised and whom they reached (subject: whoever asks)."""
    MANAGE_CONSENT = "consent.manage"
    """Record a parent's consent, set the under-13 flag, list where students stand (subject:
    the student; the whole roster for a list)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """A person acting, with what their permissions depend on."""

    person: PersonRecord
    groups: frozenset[int] = frozenset()
    """The ids of the groups they belong to (a teacher's: the groups they teach)."""
    advisees: frozenset[int] = frozenset()
    """The person ids of the students they advise."""
    pupils: frozenset[int] = frozenset()
    """The person ids of the students they teach (a teacher's groups' students)."""

    @property
    def is_staff(self) -> bool:
        return bool(STAFF_ROLES.intersection(self.person.roles))

    @property
    def is_admin(self) -> bool:
        return self.person.has_role(ADMIN)

    def teaches(self, group_id: int) -> bool:
        return self.person.has_role(TEACHER) and group_id in self.groups


Subject: TypeAlias = GroupRecord | SurveyRecord | PersonRecord
"""What an action is done to (a person: whose card or summary it is). A refusal never names a
student: someone refused learns nothing about them."""

_Rule: TypeAlias = Callable[[Actor, Subject], bool]


def _group_of(subject: Subject) -> GroupRecord | None:
    if isinstance(subject, PersonRecord):
        return None
    return subject if isinstance(subject, GroupRecord) else subject.group


def _teacher_of_group(actor: Actor, subject: Subject) -> bool:
    group = _group_of(subject)
    return group is not None and actor.teaches(group.id)


def _teacher_or_sender(actor: Actor, subject: Subject) -> bool:
    sent_by = subject.sent_by if isinstance(subject, SurveyRecord) else None
    return _teacher_of_group(actor, subject) or sent_by == actor.person.id


def _self_or_advisor(actor: Actor, subject: Subject) -> bool:
    return isinstance(subject, PersonRecord) and (
        subject.id == actor.person.id or subject.id in actor.advisees
    )


def _themself(actor: Actor, subject: Subject) -> bool:
    return isinstance(subject, PersonRecord) and subject.id == actor.person.id


def _self_advisor_or_teacher(actor: Actor, subject: Subject) -> bool:
    return _self_or_advisor(actor, subject) or (
        isinstance(subject, PersonRecord)
        and actor.person.has_role(TEACHER)
        and subject.id in actor.pupils
    )


def _nobody(actor: Actor, subject: Subject) -> bool:
    return False


def _counselor(actor: Actor, subject: Subject) -> bool:
    return actor.person.has_role(COUNSELOR)


_RULES: Final[dict[Action, _Rule]] = {
    Action.SEND_SURVEY: _teacher_of_group,
    Action.VIEW_SURVEY: _teacher_or_sender,
    Action.REMIND_SURVEY: _teacher_or_sender,
    Action.VIEW_RESULTS: _teacher_of_group,  # students' answers: the class's teachers only
    Action.VIEW_CARD: _self_or_advisor,
    Action.VIEW_SUMMARY: _themself,
    Action.VIEW_PROFILE: _self_advisor_or_teacher,  # private fields: VIEW_PRIVATE as well
    Action.VIEW_PRIVATE: _themself,
    Action.VIEW_PLAN: _self_or_advisor,
    Action.VIEW_AUDIT: _nobody,
    Action.EXPORT_DATA: _themself,  # their own data, whole (private fields too)
    Action.ERASE_DATA: _nobody,
    Action.VIEW_SAFETY_ALERTS: _counselor,
    Action.MANAGE_CONSENT: _nobody,
}
"""Who besides an administrator may do each action."""

_REFUSALS: Final[dict[Action, str]] = {
    Action.SEND_SURVEY: "only a teacher of {group} or an admin can send {group} a survey",
    Action.VIEW_SURVEY: (
        "only a teacher of {group}, whoever sent survey {survey} or an admin can see how it "
        "is going"
    ),
    Action.REMIND_SURVEY: (
        "only a teacher of {group}, whoever sent survey {survey} or an admin can send its reminders"
    ),
    Action.VIEW_RESULTS: "only a teacher of {group} or an admin can see survey {survey}'s results",
    Action.VIEW_CARD: "only the student, their advisor or an admin can see a student's card",
    Action.VIEW_SUMMARY: (
        "only the advisor themself or an admin can see an advisor's weekly summary"
    ),
    Action.VIEW_PROFILE: (
        "only the student, their advisor, their teachers or an admin can see a student's profile"
    ),
    Action.VIEW_PRIVATE: "only the student or an admin can see what a student keeps private",
    Action.VIEW_PLAN: "only the student, their advisor or an admin can see a student's plan",
    Action.VIEW_AUDIT: "only an admin can see who viewed someone's data",
    Action.EXPORT_DATA: "only the person themself or an admin can export a person's data",
    Action.ERASE_DATA: "only an admin can erase a person's data",
    Action.VIEW_SAFETY_ALERTS: "only a counselor or an admin can see safety alerts",
    Action.MANAGE_CONSENT: "only an admin can record or see parents' consent",
}


def can(actor: Actor | None, action: Action, subject: Subject) -> bool:
    """Whether ``actor`` (None: the command line's administrator) may do ``action`` to
    ``subject``."""
    if actor is None or actor.is_admin:
        return True
    return _RULES[action](actor, subject)


def require(actor: Actor | None, action: Action, subject: Subject) -> None:
    """Raise ``NotAllowedError`` (one polite line) unless ``actor`` may do ``action``."""
    if can(actor, action, subject):
        return
    survey = subject.id if isinstance(subject, SurveyRecord) else ""
    group = _group_of(subject)
    person = subject.display_name if isinstance(subject, PersonRecord) else ""
    reason = _REFUSALS[action].format(
        group=group.name if group else "", survey=survey, person=person
    )
    raise NotAllowedError(f"Sorry, {reason}.")
