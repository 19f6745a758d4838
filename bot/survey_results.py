"""A survey's results for the teacher who sent it: counts per option, free-text answers,
completion, and groups of students by an answer ("who loves robotics?").

``survey_results`` builds a neutral ``SurveyResults`` (who may see it is ``bot.roles``'s
answer); the command line prints it as text, JSON or CSV, a chat command sends
``results_notice``. What staff never see, here or anywhere: a step marked ``private: true``
(or saving a profile field some flow marks private). An anonymous flow
(``settings.anonymous: true``) shows counts and free text without names, in an order that does
not follow the respondents; under ``ANONYMITY_THRESHOLD`` responses, only how many there are.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dialogues import Flow, Step, StepType, describe_value
from storage import SurveyRecord, SurveyResponse, SurveyStore

from .app import App
from .errors import InputError
from .notices import Line, Notice, Section, Span, Style
from .roles import Action, Actor, require
from .surveys import SurveyStatus

__all__ = [
    "ANONYMITY_THRESHOLD",
    "CHOICE_LIKE",
    "Group",
    "NamedAnswer",
    "QuestionResults",
    "SurveyResults",
    "results_notice",
    "survey_results",
]

ANONYMITY_THRESHOLD: Final = 5
"""An anonymous survey with fewer responses shows only their number."""
CHOICE_LIKE: Final = frozenset(
    {StepType.CHOICE, StepType.MULTI_CHOICE, StepType.SCALE, StepType.YES_NO}
)
"""Steps whose answers are counted per value (and that students can be grouped by)."""
_NO_ANSWER: Final = "(no answer)"


@dataclass(frozen=True, slots=True)
class NamedAnswer:
    """One answer; ``person`` (handle) and ``name`` are None in an anonymous survey."""

    person: str | None
    name: str | None
    value: Any


@dataclass(frozen=True, slots=True)
class QuestionResults:
    step: str
    ask: str
    """The question as written in the flow (its template source)."""
    counts: tuple[tuple[str, int], ...] | None
    """Each value's count, options first in their order (None: not a choice-like step, or
    an anonymous survey under the threshold)."""
    labels: Mapping[str, str]
    """The label a person sees for each counted value."""
    answers: tuple[NamedAnswer, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "counts": None if self.counts is None else dict(self.counts),
            "answers": [{"person": a.person, "value": a.value} for a in self.answers],
        }


@dataclass(frozen=True, slots=True)
class Group:
    """The respondents who gave ``value`` (a count key; None: no answer) to the grouped step."""

    value: str | None
    label: str
    people: tuple[tuple[str, str], ...]
    """(handle, display name) of each, in response order."""

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "label": self.label, "people": [h for h, _ in self.people]}


@dataclass(frozen=True, slots=True)
class Respondent:
    """A CSV row: who (None when anonymous) and their answer to each step, as text."""

    person: str | None
    name: str | None
    cells: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SurveyResults:
    """What a teacher sees of a survey (see the module docstring)."""

    survey: SurveyRecord
    title: str
    anonymous: bool
    responses: int
    questions: tuple[QuestionResults, ...]
    completion: SurveyStatus
    respondents: tuple[Respondent, ...]
    group_by: str | None = None
    groups: tuple[Group, ...] = ()
    shown: tuple[int, ...] = ()
    """The person ids of the respondents whose answers it shows (for the audit): none when
    withheld."""

    @property
    def id(self) -> int:
        return self.survey.id

    @property
    def flow(self) -> str:
        return self.survey.flow_id

    @property
    def withheld(self) -> bool:
        """Anonymous, with too few responses to show anything but their number."""
        return self.anonymous and self.responses < ANONYMITY_THRESHOLD

    def to_json(self) -> dict[str, Any]:
        """product.md's shape; ``group_by`` and ``groups`` only when grouped."""
        data: dict[str, Any] = {
            "id": self.id,
            "flow": self.flow,
            "responses": self.responses,
            "questions": [q.to_json() for q in self.questions],
        }
        if self.group_by is not None:
            data["group_by"] = self.group_by
            data["groups"] = [g.to_json() for g in self.groups]
        return data

    def text(self) -> str:
        return results_notice(self).plain_text()

    def csv_text(self) -> str:
        """One row per respondent (per group and respondent when grouped), a column per step;
        no names when anonymous, no rows while withheld."""
        out = io.StringIO()
        writer = csv.writer(out)
        steps = [q.step for q in self.questions]
        named = not self.anonymous
        grouped = ["group"] if self.group_by is not None else []
        writer.writerow([*grouped, *(["person", "name"] if named else []), *steps])
        if self.withheld:
            return out.getvalue()
        if self.group_by is None:
            for row in self.respondents:
                writer.writerow([*([row.person, row.name] if named else []), *row.cells])
            return out.getvalue()
        rows = {row.person: row for row in self.respondents}
        for group in self.groups:
            for handle, name in group.people:
                writer.writerow([group.label, handle, name, *rows[handle].cells])
        return out.getvalue()


def survey_results(
    app: App, survey_id: int, *, actor: Actor | None, group_by: str | None = None
) -> SurveyResults:
    """Survey ``survey_id``'s results, for ``actor`` (``Action.VIEW_RESULTS``), grouped by
    the answers to step ``group_by`` if given (InputError for an anonymous survey, an unknown,
    private or free-text step)."""
    store = SurveyStore(app.db)
    survey = store.get(survey_id)
    require(actor, Action.VIEW_RESULTS, survey)
    flow = app.registry.get(survey.flow_id)
    steps = _shown_steps(flow, app.private_fields())
    anonymous = flow.settings.anonymous
    grouped = _group_step(survey, flow, steps, group_by, anonymous) if group_by else None
    responses = store.responses(survey_id)
    withheld = anonymous and len(responses) < ANONYMITY_THRESHOLD
    completion = SurveyStatus(survey, store.counts(survey_id))
    by_step = _answers_by_step(responses)
    questions = tuple(
        _question(step, by_step.get(step.id, []), anonymous=anonymous, withheld=withheld)
        for step in steps
    )
    return SurveyResults(
        survey=survey,
        title=flow.title,
        anonymous=anonymous,
        responses=len(responses),
        questions=questions,
        completion=completion,
        respondents=() if withheld else _respondents(responses, steps, anonymous),
        group_by=None if grouped is None else grouped.id,
        groups=() if grouped is None else _groups(grouped, responses),
        shown=() if withheld else tuple(r.person_id for r in responses),
    )


def _shown_steps(flow: Flow, private_fields: set[str]) -> list[Step]:
    """The steps that ask something, but for private ones."""
    return [
        node
        for node in flow.iter_steps()
        if isinstance(node, Step)
        and node.asks
        and not node.private
        and not (node.save is not None and ".".join(node.save.path) in private_fields)
    ]


def _group_step(
    survey: SurveyRecord, flow: Flow, steps: Sequence[Step], step_id: str, anonymous: bool
) -> Step:
    if anonymous:
        raise InputError(
            f"survey {survey.id} is anonymous: its answers cannot be grouped by who gave them"
        )
    step = next((s for s in steps if s.id == step_id), None)
    if step is None:
        known = ", ".join(s.id for s in steps if s.type in CHOICE_LIKE) or "none"
        raise InputError(
            f"--group-by {step_id!r}: {flow.id} has no such step to group by (these: {known})"
        )
    if step.type not in CHOICE_LIKE:
        raise InputError(
            f"--group-by {step_id!r}: a {step.type.value} step has no options to group by; "
            "use a choice, multi_choice, scale or yes_no step"
        )
    return step


def _answers_by_step(
    responses: Iterable[SurveyResponse],
) -> dict[str, list[tuple[SurveyResponse, Any]]]:
    found: dict[str, list[tuple[SurveyResponse, Any]]] = {}
    for response in responses:
        for given in response.answers:
            found.setdefault(given.step_id, []).append((response, given.value))
    return found


def _question(
    step: Step, given: list[tuple[SurveyResponse, Any]], *, anonymous: bool, withheld: bool
) -> QuestionResults:
    choice_like = step.type in CHOICE_LIKE
    labels = _labels(step) if choice_like else {}
    if withheld:
        return QuestionResults(step.id, step.ask, None, labels, ())
    counts = _counts(step, [value for _, value in given]) if choice_like else None
    if not anonymous:
        answers = tuple(NamedAnswer(r.handle, r.display_name, v) for r, v in given)
    elif choice_like:
        answers = ()  # counts say it all; answers side by side would trace a respondent
    else:
        answers = tuple(
            NamedAnswer(None, None, v)
            for v in sorted((v for _, v in given), key=lambda v: describe_value(v).casefold())
        )
    return QuestionResults(step.id, step.ask, counts, labels, answers)


def _value_key(value: Any) -> str:
    """A value as a count's key: an option's value, a scale point, ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return describe_value(value)


def _labels(step: Step) -> dict[str, str]:
    if step.type is StepType.YES_NO:
        return {"true": "yes", "false": "no"}
    if step.type is StepType.SCALE:
        named = dict(step.labels)
        low, high = int(step.min or 0), int(step.max or 0)
        return {str(n): f"{n} ({named[n]})" if n in named else str(n) for n in range(low, high + 1)}
    return {o.value: o.value if "{" in o.label else o.label for o in step.options}


def _counts(step: Step, values: list[Any]) -> tuple[tuple[str, int], ...]:
    """Every option (or scale point) with its count, zeros too, then any other answer typed
    beside them (``allow_other``) in the order first given."""
    tally: Counter[str] = Counter()
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            tally[_value_key(item)] += 1
    keys = list(_labels(step))
    keys += [k for k in tally if k not in keys]
    return tuple((k, tally[k]) for k in keys)


def _cell(values: list[Any]) -> str:
    """A CSV cell: lists joined by "; ", a step asked several times (a loop) by " | "."""

    def one(value: Any) -> str:
        if isinstance(value, list):
            return "; ".join(one(v) for v in value)
        return _value_key(value)

    return " | ".join(one(v) for v in values)


def _respondents(
    responses: Iterable[SurveyResponse], steps: Sequence[Step], anonymous: bool
) -> tuple[Respondent, ...]:
    rows = []
    for response in responses:
        values: dict[str, list[Any]] = {}
        for given in response.answers:
            values.setdefault(given.step_id, []).append(given.value)
        cells = tuple(_cell(values.get(step.id, [])) for step in steps)
        if anonymous:
            rows.append(Respondent(None, None, cells))
        else:
            rows.append(Respondent(response.handle, response.display_name, cells))
    if anonymous:  # an order of their own, not the order they answered in
        rows.sort(key=lambda row: row.cells)
    return tuple(rows)


def _groups(step: Step, responses: Iterable[SurveyResponse]) -> tuple[Group, ...]:
    """A group per value given (option order, empty ones left out); a person who picked
    several options of a multi-choice is in each; who skipped the step, in a group last."""
    labels = _labels(step)
    members: dict[str | None, list[tuple[str, str]]] = {}
    for response in responses:
        keys: list[str | None] = []
        for given in response.answers:
            if given.step_id == step.id:
                items = given.value if isinstance(given.value, list) else [given.value]
                keys += [_value_key(item) for item in items if _value_key(item) not in keys]
        for key in keys or [None]:
            members.setdefault(key, []).append((response.handle, response.display_name))
    order: list[str | None] = [k for k in labels if k in members]
    order += [k for k in members if k not in order and k is not None]
    order += [None] if None in members else []
    return tuple(
        Group(
            key,
            _NO_ANSWER if key is None else labels.get(key, key),
            tuple(members[key]),
        )
        for key in order
    )


# -- the chat message (and the terminal's text) ------------------------------------------------


def results_notice(results: SurveyResults) -> Notice:
    """The results as a ``Notice``: every answer a span of raw text, each adapter escapes."""
    survey = results.survey
    plural = "response" if results.responses == 1 else "responses"
    title = (
        f"Survey {survey.id} results: {results.title} ({survey.flow_id}) to "
        f"{survey.group.name} — {results.responses} {plural}"
    )
    sections = [Section(None, _overview(results))]
    if not results.withheld:
        sections += [_question_section(q, named=not results.anonymous) for q in results.questions]
    if results.group_by is not None:
        sections.append(_groups_section(results))
    return Notice(title, tuple(sections))


def _overview(results: SurveyResults) -> tuple[Line, ...]:
    lines = [Line.of(line) for line in results.completion.text().splitlines()[1:]]
    if results.withheld:
        lines.append(
            Line.of(
                Span("Anonymous survey: ", Style.BOLD),
                f"answers are shown once {ANONYMITY_THRESHOLD} students have completed it.",
            )
        )
    elif results.anonymous:
        lines.append(
            Line.of(Span("Anonymous survey: ", Style.BOLD), "counts and unnamed answers only.")
        )
    return tuple(lines)


def _question_section(question: QuestionResults, *, named: bool) -> Section:
    title = f"{question.ask.strip()} ({question.step})"
    lines: list[Line] = []
    if question.counts is not None:
        who: dict[str, list[str]] = {}
        for answer in question.answers:
            items = answer.value if isinstance(answer.value, list) else [answer.value]
            for item in items:
                who.setdefault(_value_key(item), []).append(answer.name or "")
        for key, count in question.counts:
            parts: list[str | Span] = [
                f"{question.labels.get(key, key)}: ",
                Span(str(count), Style.BOLD),
            ]
            if named and who.get(key):
                parts.append(f" ({', '.join(who[key])})")
            lines.append(Line.of(*parts, bullet=True))
    else:
        for answer in question.answers:
            text = describe_value(answer.value)
            if named:
                lines.append(Line.of(Span(f"{answer.name}: ", Style.BOLD), text, bullet=True))
            else:
                lines.append(Line.of(text, bullet=True))
    if not lines:
        lines.append(Line.of(Span("no answers", Style.ITALIC)))
    return Section(title, tuple(lines))


def _groups_section(results: SurveyResults) -> Section:
    lines = [
        Line.of(
            Span(f"{group.label} ({len(group.people)}): ", Style.BOLD),
            ", ".join(name for _, name in group.people),
            bullet=True,
        )
        for group in results.groups
    ]
    return Section(f"Groups by {results.group_by}", tuple(lines))
