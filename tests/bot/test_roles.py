"""Who may do what (bot/roles.py): every action, for every kind of person."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import NotAllowedError
from bot.roles import Action, Actor, Subject, can, require
from storage import GroupRecord, PersonRecord, SurveyRecord

SEVEN_B = GroupRecord(7, "7B")
EIGHT_A = GroupRecord(8, "8A")


def _person(person_id: int, *roles: str) -> PersonRecord:
    return PersonRecord(
        id=person_id,
        handle=f"p{person_id}",
        display_name=f"Person {person_id}",
        first_name="Person",
        timezone=None,
        language="en",
        roles=tuple(sorted(roles)),
        opted_out=False,
    )


def _survey(group: GroupRecord, sent_by: int | None) -> SurveyRecord:
    return SurveyRecord(1, "weekly_checkin", group, sent_by, datetime(2026, 9, 1, tzinfo=UTC))


ACTORS: dict[str, Actor | None] = {
    "command line": None,
    "admin": Actor(_person(1, "admin")),
    "teacher of 7B": Actor(_person(2, "teacher"), frozenset({SEVEN_B.id}), pupils=frozenset({5})),
    "teacher of 8A only": Actor(_person(3, "teacher"), frozenset({EIGHT_A.id})),
    "advisor in 7B": Actor(_person(4, "advisor"), frozenset({SEVEN_B.id}), frozenset({5})),
    "student of 7B": Actor(_person(5, "student"), frozenset({SEVEN_B.id})),
    "counselor": Actor(_person(8, "counselor")),
    "teacher and counselor": Actor(_person(9, "counselor", "teacher")),
    "nobody in particular": Actor(_person(6)),
}
SURVEY_OF_7B = _survey(SEVEN_B, sent_by=None)
SENT_BY_8A_TEACHER = _survey(SEVEN_B, sent_by=3)
ADVISED_STUDENT = _person(5, "student")  # "student of 7B", advised by "advisor in 7B"
OTHER_STUDENT = _person(7, "student")

ADVISOR = ACTORS["advisor in 7B"]
assert ADVISOR is not None
ADVISING_TEACHER = ACTORS["teacher of 7B"]
assert ADVISING_TEACHER is not None

# action, subject, who may
EXPECTED: list[tuple[Action, Subject, set[str]]] = [
    (Action.SEND_SURVEY, SEVEN_B, {"command line", "admin", "teacher of 7B"}),
    (Action.SEND_SURVEY, EIGHT_A, {"command line", "admin", "teacher of 8A only"}),
    (Action.VIEW_SURVEY, SURVEY_OF_7B, {"command line", "admin", "teacher of 7B"}),
    (
        Action.VIEW_SURVEY,
        SENT_BY_8A_TEACHER,  # whoever sent it may follow it, wherever they teach now
        {"command line", "admin", "teacher of 7B", "teacher of 8A only"},
    ),
    (Action.REMIND_SURVEY, SURVEY_OF_7B, {"command line", "admin", "teacher of 7B"}),
    (
        Action.REMIND_SURVEY,
        SENT_BY_8A_TEACHER,
        {"command line", "admin", "teacher of 7B", "teacher of 8A only"},
    ),
    (Action.VIEW_RESULTS, SURVEY_OF_7B, {"command line", "admin", "teacher of 7B"}),
    (  # the answers are the class's: whoever sent it sees them only while they teach it
        Action.VIEW_RESULTS,
        SENT_BY_8A_TEACHER,
        {"command line", "admin", "teacher of 7B"},
    ),
    (
        Action.VIEW_CARD,
        ADVISED_STUDENT,
        {"command line", "admin", "advisor in 7B", "student of 7B"},
    ),
    (Action.VIEW_CARD, OTHER_STUDENT, {"command line", "admin"}),
    (  # a teacher sees their students' profile, but for its private fields
        Action.VIEW_PROFILE,
        ADVISED_STUDENT,
        {"command line", "admin", "advisor in 7B", "student of 7B", "teacher of 7B"},
    ),
    (Action.VIEW_PROFILE, OTHER_STUDENT, {"command line", "admin"}),
    (Action.VIEW_PRIVATE, ADVISED_STUDENT, {"command line", "admin", "student of 7B"}),
    (Action.VIEW_PRIVATE, OTHER_STUDENT, {"command line", "admin"}),
    (
        Action.VIEW_PLAN,
        ADVISED_STUDENT,
        {"command line", "admin", "advisor in 7B", "student of 7B"},
    ),
    (Action.VIEW_PLAN, OTHER_STUDENT, {"command line", "admin"}),
    (Action.VIEW_AUDIT, ADVISED_STUDENT, {"command line", "admin"}),
    # an advisor's summary: the advisor themself (whatever their role), never a colleague
    (Action.VIEW_SUMMARY, ADVISOR.person, {"command line", "admin", "advisor in 7B"}),
    (Action.VIEW_SUMMARY, ADVISING_TEACHER.person, {"command line", "admin", "teacher of 7B"}),
    # a person's whole data: they themself (right of access) or an admin; erasure: admins
    (Action.EXPORT_DATA, ADVISED_STUDENT, {"command line", "admin", "student of 7B"}),
    (Action.ERASE_DATA, ADVISED_STUDENT, {"command line", "admin"}),
    # safety alerts: the people they go to (the subject is whoever asks)
    *(
        (
            Action.VIEW_SAFETY_ALERTS,
            asker.person,
            {"command line", "admin", "counselor", "teacher and counselor"},
        )
        for asker in (ADVISOR, ADVISING_TEACHER)
    ),
    (Action.MANAGE_CONSENT, ADVISED_STUDENT, {"command line", "admin"}),
]


def test_every_action_is_covered_here() -> None:
    assert {action for action, _, _ in EXPECTED} == set(Action)


@pytest.mark.parametrize(("action", "subject", "allowed"), EXPECTED)
@pytest.mark.parametrize("who", list(ACTORS))
def test_who_may_do_what(who: str, action: Action, subject: Subject, allowed: set[str]) -> None:
    actor = ACTORS[who]
    assert can(actor, action, subject) is (who in allowed)
    if who in allowed:
        require(actor, action, subject)
    else:
        with pytest.raises(NotAllowedError) as refused:
            require(actor, action, subject)
        message = str(refused.value)
        if isinstance(subject, PersonRecord):
            name = subject.display_name
            if action is Action.VIEW_SUMMARY:
                assert message == (
                    "Sorry, only the advisor themself or an admin can see an advisor's weekly "
                    "summary."
                )
            elif action is Action.VIEW_SAFETY_ALERTS:
                assert message == "Sorry, only a counselor or an admin can see safety alerts."
            else:  # a student's name is not told to someone refused their data
                assert name not in message and subject.handle not in message
                assert message.startswith("Sorry, only ")
        else:
            group = subject if isinstance(subject, GroupRecord) else subject.group
            assert message.startswith(f"Sorry, only a teacher of {group.name}")
        assert "\n" not in message and message.endswith(".")


def test_refusals_are_polite_and_name_the_group() -> None:
    student = ACTORS["student of 7B"]
    with pytest.raises(NotAllowedError) as refused:
        require(student, Action.SEND_SURVEY, SEVEN_B)
    assert str(refused.value) == "Sorry, only a teacher of 7B or an admin can send 7B a survey."
    with pytest.raises(NotAllowedError) as refused:
        require(student, Action.VIEW_SURVEY, SURVEY_OF_7B)
    assert "survey 1" in str(refused.value)


def test_a_teacher_sees_only_their_own_students_profile() -> None:
    """Teaching is the role and the class: a teacher's pupils, not another class's; and a
    student who sits in a class does not see classmates' profiles."""
    teacher = ACTORS["teacher of 8A only"]
    assert not can(teacher, Action.VIEW_PROFILE, ADVISED_STUDENT)
    classmate = Actor(_person(11, "student"), frozenset({SEVEN_B.id}), pupils=frozenset({5}))
    assert not can(classmate, Action.VIEW_PROFILE, ADVISED_STUDENT)


def test_a_teacher_role_is_needed_besides_the_membership() -> None:
    """A student who also advises is not a teacher of the class they sit in."""
    actor = Actor(_person(9, "student", "advisor"), frozenset({SEVEN_B.id}))
    assert not can(actor, Action.SEND_SURVEY, SEVEN_B)
    both = Actor(_person(10, "advisor", "teacher"), frozenset({SEVEN_B.id}))
    assert can(both, Action.SEND_SURVEY, SEVEN_B)
