"""The flow loader: every valid file loads into the exact schema, every broken one is refused
at load time with file, line, step id and a message that says what would be right."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogues import (
    Audience,
    Flow,
    FlowLoadError,
    FlowProblem,
    FlowSettings,
    Loop,
    NextRule,
    OptionSpec,
    SaveKind,
    SaveTarget,
    Step,
    StepType,
    _loader,
    check_flow_files,
    load_flow_file,
    load_flow_text,
    parse_duration,
)

HERE = Path(__file__).parent
BROKEN = HERE / "broken"
VALID = HERE / "valid"
BUILTIN = HERE.parent.parent / "dialogues" / "flows"

MINIMAL = """\
id: minimal
version: 1
title: Minimal
steps:
  - id: name
    type: text
    ask: Name?
"""


def _problems(text: str) -> list[FlowProblem]:
    with pytest.raises(FlowLoadError) as caught:
        load_flow_text(text, filename="t.yaml")
    return caught.value.problems


def _step(flow: Flow, step_id: str) -> Step:
    found = next(s for s in flow.iter_steps() if s.id == step_id)
    assert isinstance(found, Step)
    return found


# --------------------------------------------------------------------------- broken files

BROKEN_CASES = [
    # (file, expected substring, line, step id)
    ("yaml_syntax.yaml", "not valid YAML: expected ',' or ']'", 14, None),
    ("tabs.yaml", "YAML does not allow tabs for indentation", 7, None),
    ("empty.yaml", "the file is empty", 1, None),
    ("top_level_list.yaml", "must be a mapping with id:, version:, title: and steps:", 1, None),
    ("not_utf8.yaml", "not UTF-8 text", 4, None),
    (
        "duplicate_key.yaml",
        "ask: the key appears twice in this mapping (first on line 8)",
        9,
        "name",
    ),
    ("unknown_top_key.yaml", "stpes: unknown key; did you mean 'steps'?", 5, None),
    ("bad_flow_id.yaml", "is not snake_case", 2, None),
    ("bad_version.yaml", "version: must be a whole number >= 1, got 0", 3, None),
    ("bool_version.yaml", "version: must be a whole number >= 1, got true", 3, None),
    ("missing_title.yaml", "title: missing", 2, None),
    ("bad_audience.yaml", "did you mean 'student'?", 5, None),
    ("bad_duration.yaml", "remind_after: '2 days' is not a duration", 6, None),
    ("unknown_setting.yaml", "max_reminder: unknown key; did you mean 'max_reminders'?", 6, None),
    ("bad_anonymous.yaml", "anonymous: must be true or false, got 'yes please'", 6, None),
    ("empty_steps.yaml", "steps: is empty; add at least one step", 5, None),
    ("step_not_mapping.yaml", "a step must be a mapping", 6, None),
    ("missing_type.yaml", "type: missing", 6, "name"),
    ("bad_type.yaml", "did you mean 'multi_choice'?", 7, "hobbies"),
    ("unknown_step_key.yaml", "optinal: unknown key; did you mean 'optional'?", 9, "name"),
    ("meaningless_key.yaml", "a text step does not use options", 9, "name"),
    ("missing_ask.yaml", "ask: missing", 6, "name"),
    ("ask_is_list.yaml", "ask: must be text, got a list", 8, "name"),
    ("message_save.yaml", "a message step takes no answer, so it has no save", 9, "hello"),
    ("message_without_say.yaml", "say: missing", 6, "hello"),
    ("say_on_question.yaml", "only message steps say things", 9, "name"),
    ("too_few_options.yaml", "needs at least 2 options, got 1", 9, "colour"),
    ("duplicate_option.yaml", "value 'art' repeats 'Art'", 12, "subject"),
    ("unknown_option_key.yaml", "lable: unknown key; did you mean 'label'?", 10, "subject"),
    ("option_label_template.yaml", "options[1]: the template does not parse", 10, "subject"),
    ("scale_too_wide.yaml", "at most 11 fit one row of buttons", 10, "score"),
    ("scale_label_outside.yaml", "7 is outside the scale 1..5", 11, "noise"),
    ("scale_not_int.yaml", "min: must be a whole number on a scale", 9, "noise"),
    ("number_min_max.yaml", "min: 10 is more than max 1", 9, "age"),
    ("text_min_length.yaml", "min_length: must be a whole number >= 1", 9, "name"),
    ("text_lengths_swapped.yaml", "min_length: 20 is more than max_length 10", 9, "name"),
    ("multi_max_options.yaml", "max: 5 picks but there are only 3 options", 10, "hobbies"),
    ("length_without_other.yaml", "needs allow_other: true", 10, "colour"),
    ("bad_save_head.yaml", "did you mean 'profile'?", 9, "name"),
    ("bad_goal_field.yaml", "goal has no field 'titel'", 9, "goal_title"),
    ("bad_checkin_field.yaml", "a check-in has no field 'feeling'", 9, "mood"),
    ("goal_without_new.yaml", "'goal.why' needs a current goal", 9, "why"),
    ("checkin_goal_outside_loop.yaml", "only works inside for_each", 9, "progress"),
    ("append_non_profile.yaml", "append only works with profile.<field> targets", 10, "note"),
    ("bad_mode.yaml", "did you mean 'append'?", 10, "hobbies"),
    ("private_not_profile.yaml", "private: only applies to a profile.<field> save", 10, "mood"),
    ("bad_status_options.yaml", "'done' is not a goal status", 13, "goal_status"),
    (
        "goto_missing.yaml",
        "next: goto 'goal_titel' is not a step in this flow; did you mean 'goal_title'?",
        11,
        "has_goal",
    ),
    ("unreachable_rule.yaml", "rule 2 can never be reached", 10, "has_goal"),
    ("bad_when_syntax.yaml", "next[1].when: the expression does not parse", 10, "has_goal"),
    ("unknown_name.yaml", "unknown name 'answres'", 13, "hello"),
    ("answer_outside_next.yaml", "'answer' only exists in next: rules", 13, "hello"),
    (
        "goal_outside_loop.yaml",
        "'goal' only exists inside the steps of a for_each loop",
        8,
        "progress",
    ),
    ("answers_unknown_step.yaml", "did you mean 'preferred_name'?", 11, "hello"),
    ("template_syntax.yaml", "ask: the template does not parse", 8, "name"),
    ("intro_unknown_name.yaml", "unknown name 'persn'", 5, None),
    ("duplicate_step_id.yaml", "id: 'name' is already used on line 6", 10, "name"),
    ("reserved_end_id.yaml", "'end' is reserved", 6, "end"),
    ("bad_step_id.yaml", "is not a step id", 6, "my name"),
    ("max_retries_zero.yaml", "max_retries: must be a whole number >= 1, got 0", 9, "name"),
    ("skip_if_empty_missing.yaml", "did you mean 'no_goals'?", 8, "goals"),
    ("loop_without_steps.yaml", "steps: missing; a for_each loop needs the steps", 6, "goals"),
    ("loop_type_key.yaml", "type: not used by a for_each loop", 8, "goals"),
    ("loop_alias_reserved.yaml", "'plan' is already a name in templates", 8, "goals"),
]


@pytest.mark.parametrize(("name", "expected", "line", "step_id"), BROKEN_CASES)
def test_broken_file_is_refused_with_one_precise_problem(
    name: str, expected: str, line: int, step_id: str | None
) -> None:
    path = BROKEN / name
    with pytest.raises(FlowLoadError) as caught:
        load_flow_file(path)
    problems = caught.value.problems
    assert len(problems) == 1, "\n".join(map(str, problems))
    problem = problems[0]
    assert expected in problem.message
    assert (problem.file, problem.line, problem.step_id) == (str(path), line, step_id)
    assert str(problem).startswith(f"{path}:{line}:")


def test_every_broken_file_has_an_expectation() -> None:
    on_disk = {p.name for p in BROKEN.glob("*.yaml")}
    assert on_disk == {case[0] for case in BROKEN_CASES}
    assert len(on_disk) >= 25


def test_check_flow_files_reports_every_broken_file() -> None:
    problems = check_flow_files(sorted(BROKEN.glob("*.yaml")))
    assert {Path(p.file).name for p in problems} == {case[0] for case in BROKEN_CASES}


def test_all_problems_are_collected_in_line_order() -> None:
    text = MINIMAL.replace("version: 1", "version: 0").replace("type: text", "type: txt")
    text += "  - id: name\n    type: yes_no\n    ask: Again?\n    next: nowhere\n"
    problems = _problems(text)
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)
    messages = " | ".join(p.message for p in problems)
    for part in ("version:", "did you mean 'text'?", "already used", "'nowhere' is not a step"):
        assert part in messages
    assert str(FlowLoadError(problems)).count("\n") == len(problems) - 1


# --------------------------------------------------------------------------- valid files


@pytest.mark.parametrize("path", sorted(VALID.glob("*.yaml")), ids=lambda p: p.name)
def test_valid_file_loads(path: Path) -> None:
    flow = load_flow_file(path)
    text = path.read_text(encoding="utf-8")
    assert flow.source == text
    assert flow.content_hash == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert flow.path == str(path)
    ids = [s.id for s in flow.iter_steps()]
    assert len(ids) == len(set(ids))


def test_spec_example_round_trips() -> None:
    flow = load_flow_file(VALID / "spec_example.yaml")
    assert (flow.id, flow.version, flow.title, flow.audience) == (
        "this_is_me",
        3,
        "This is me",
        Audience.STUDENT,
    )
    assert flow.settings == FlowSettings(86400, 2, 7 * 86400, 3)
    assert flow.intro == "Hi {{ person.first_name }}! Let's build your learner profile."
    interests = _step(flow, "interests")
    assert interests.type is StepType.MULTI_CHOICE
    assert interests.options[0] == OptionSpec("art", "art") and len(interests.options) == 7
    assert (interests.allow_other, interests.min, interests.max) == (True, 1, None)
    learn = _step(flow, "learn_best")
    assert learn.options[0] == OptionSpec("seeing", "By seeing: pictures, diagrams, videos")
    noise = _step(flow, "noise")
    assert (noise.min, noise.max, noise.labels, noise.optional) == (
        1,
        5,
        ((1, "silent"), (5, "lively")),
        True,
    )
    assert noise.save == SaveTarget(
        "profile.environment.noise_level", SaveKind.PROFILE, ("environment", "noise_level")
    )
    assert _step(flow, "has_goal").next == (
        NextRule("goal_title", "answer", 45),
        NextRule("end", None, 47),
    )
    assert _step(flow, "goal_title").save == SaveTarget(
        "goal.new.title", SaveKind.GOAL_NEW, ("title",)
    )
    assert _step(flow, "preferred_name") == Step(
        id="preferred_name",
        type=StepType.TEXT,
        ask="What do you like to be called?",
        max_length=40,
        save=SaveTarget("profile.preferred_name", SaveKind.PROFILE, ("preferred_name",)),
        line=13,
    )


def test_every_type_round_trips() -> None:
    flow = load_flow_file(VALID / "every_type.yaml")
    assert flow.audience is Audience.ADVISOR
    assert flow.description == "One step of each type, for the loader tests."
    assert flow.settings == FlowSettings(12 * 3600, 1, 7 * 86400, 2)
    assert {s.type for s in flow.iter_steps() if isinstance(s, Step)} == set(StepType)
    welcome = _step(flow, "welcome")
    assert welcome.ask.startswith("Hi {{ profile.preferred_name") and not welcome.asks
    nickname = _step(flow, "nickname")
    assert (nickname.min_length, nickname.max_length, nickname.private) == (2, 40, True)
    assert nickname.hint == "Between 2 and 40 letters, please."
    age = _step(flow, "age")
    assert (age.min, age.max, age.integer, age.max_retries) == (5, 99.5, True, 5)
    assert age.save is not None and age.save.path == ("about", "age")
    subject = _step(flow, "subject")
    assert subject.options == (
        OptionSpec("maths", "Maths for {{ person.first_name }}"),
        OptionSpec("art", "art"),
        OptionSpec("science", "science"),
    )
    assert (subject.allow_other, subject.max_length) == (True, 30)
    hobbies = _step(flow, "hobbies")
    # bare 3 and yes are the text the author typed, not 3 and True
    assert [o.value for o in hobbies.options] == ["reading", "games", "3", "yes"]
    assert (hobbies.min, hobbies.max) == (0, 2)
    assert hobbies.save == SaveTarget("profile.hobbies", SaveKind.PROFILE, ("hobbies",), True)
    confidence = _step(flow, "confidence")
    assert (confidence.min, confidence.max, confidence.labels) == (
        0,
        10,
        ((0, "not at all"), (10, "totally")),
    )
    assert [r.when for r in _step(flow, "wants_goal").next] == [
        "not answer",
        "answers.age > 12",
        None,
    ]
    assert _step(flow, "goal_status").save == SaveTarget("goal.status", SaveKind.GOAL, ("status",))
    assert _step(flow, "goal_due").when == "answers['goal_title'] is defined"
    steps = _step(flow, "goal_steps")
    assert steps.save == SaveTarget(
        "goal.action_steps", SaveKind.GOAL_ACTION_STEPS, ("action_steps",)
    )
    assert (steps.min, steps.max) == (1, 5)  # a list asks for at least one item
    assert _step(flow, "evidence").type is StepType.FILE
    feelings = _step(flow, "feelings")
    assert feelings.save == SaveTarget("checkin.mood", SaveKind.CHECKIN, ("mood",))
    assert feelings.next == (NextRule("end", None, feelings.next[0].line),)


def test_loops_round_trip() -> None:
    flow = load_flow_file(VALID / "checkin_loops.yaml")
    assert flow.settings == FlowSettings(30 * 60, 1, 86400, 3)  # remind_after alone: one reminder
    assert _step(flow, "energy").labels == ((1, "low"), (5, "high"))
    loop = flow.steps[1]
    assert isinstance(loop, Loop)
    assert (loop.id, loop.source, loop.alias, loop.skip_if_empty) == (
        "goals",
        "plan.active_goals",
        "goal",
        "no_goals",
    )
    assert loop.when == "plan.active_goals | length > 0"
    assert [s.id for s in loop.steps] == ["progress", "status", "more_steps", "each_step"]
    inner = loop.steps[3]
    assert isinstance(inner, Loop) and (inner.alias, inner.skip_if_empty) == ("action", None)
    assert _step(flow, "progress").save == SaveTarget(
        "checkin.goal.progress", SaveKind.CHECKIN_GOAL, ("progress",)
    )
    assert _step(flow, "step_done").save == SaveTarget(
        "checkin.goal.did", SaveKind.CHECKIN_GOAL, ("did",)
    )
    assert _step(flow, "more_steps").min == 0
    assert _step(flow, "reflect").save == SaveTarget(
        "reflection.learned", SaveKind.REFLECTION, ("learned",)
    )
    assert [s.id for s in flow.iter_steps()][:3] == ["energy", "goals", "progress"]


def test_defaults() -> None:
    flow = load_flow_text(MINIMAL)
    assert flow.audience is Audience.STUDENT
    assert flow.settings == FlowSettings()
    assert (flow.intro, flow.outro, flow.description, flow.path) == (None, None, None, None)
    scale = _step(load_flow_text(MINIMAL.replace("type: text", "type: scale")), "name")
    assert (scale.min, scale.max, scale.labels) == (1, 5, ())


def test_content_hash_follows_the_text() -> None:
    first = load_flow_text(MINIMAL)
    same = load_flow_text(MINIMAL)
    commented = load_flow_text(MINIMAL + "# a comment changes the content\n")
    assert first.content_hash == same.content_hash
    assert first.content_hash != commented.content_hash
    assert commented.source.endswith("# a comment changes the content\n")
    assert first.content_hash == hashlib.sha256(MINIMAL.encode()).hexdigest()


# --------------------------------------------------------------------------- details


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("12h", 43200), ("1d", 86400), ("1w", 604800), (" 2d ", 172800)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "1 day", "1y", "-1d", "0m", "1.5h", "1D", "d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_check_flow_files_finds_duplicate_ids_across_files(tmp_path: Path) -> None:
    one, two, other = tmp_path / "one.yaml", tmp_path / "two.yaml", tmp_path / "other.yaml"
    one.write_text(MINIMAL)
    two.write_text("# the same id again\n" + MINIMAL)
    other.write_text(MINIMAL.replace("id: minimal", "id: other"))
    assert check_flow_files([one, other]) == []
    problems = check_flow_files([one, two, other])
    assert len(problems) == 1
    assert (problems[0].file, problems[0].line) == (str(two), 2)
    assert "flow id 'minimal' is also used by" in problems[0].message
    assert str(one) in problems[0].message


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.yaml", tmp_path):
        with pytest.raises(FlowLoadError) as caught:
            load_flow_file(path)
        assert "cannot read the file" in caught.value.problems[0].message


def test_byte_order_mark_and_merge_keys_are_fine() -> None:
    text = MINIMAL + (
        "  - &base\n    id: first\n    type: yes_no\n    ask: Sure?\n"
        "  - <<: *base\n    id: second\n    ask: Really sure?\n"
    )
    flow = load_flow_text("\ufeff" + text)
    assert [s.id for s in flow.steps] == ["name", "first", "second"]


def test_alias_loops_are_refused_not_recursed() -> None:
    text = MINIMAL + "  - &loop\n    id: again\n    for_each: plan.goals\n    steps: [*loop]\n"
    problems = _problems(text)
    assert any("already used" in p.message or "itself" in p.message for p in problems)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: 2020-13-45\n", "put it in quotes"),
        ("[" * 5000, "nested too deeply"),
        ("id: x\x07\n", "a character YAML cannot read (U+0007)"),
        ("- a\n- b\n", "must be a mapping"),
        ("just words\n", "must be a mapping"),
        ("a: 1\n---\nb: 2\n", "expected a single document"),
    ],
)
def test_unreadable_yaml_is_one_clear_problem(text: str, expected: str) -> None:
    problems = _problems(text)
    assert len(problems) == 1 and expected in problems[0].message


def _read_both_ways(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """What loading gives with libyaml (the default where PyYAML has it) and with PyYAML's
    own parser, which read every file before libyaml was used."""

    def load() -> object:
        try:
            return load_flow_text(text, filename="t.yaml")
        except FlowLoadError as exc:
            return exc.problems

    fast = load()
    with monkeypatch.context() as patch:
        patch.setattr(_loader, "_FAST_LOADER", None)
        pure = load()
    return fast, pure


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML was built without libyaml")
@pytest.mark.parametrize(
    "path",
    sorted([*VALID.glob("*.yaml"), *BROKEN.glob("*.yaml"), *BUILTIN.glob("*.yaml")]),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_libyaml_reads_every_file_as_pyyaml_did(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, pure = _read_both_ways(path.read_text(errors="replace"), monkeypatch)
    assert fast == pure


@pytest.mark.parametrize(
    "text",
    [
        MINIMAL + "  - id: colour\n    type: text\n    ask:\tColour?\n",  # a tab libyaml takes
        MINIMAL + "\ufeff",  # a byte order mark past the start, which libyaml skips
        MINIMAL + "  - id: n\n    type: number\n    ask: [How, many]\n",
        MINIMAL + "  - {id: q, type: text, ask: Why?\n",
        "id: 2020-13-45\n",
        "[" * 5000,
    ],
)
def test_yaml_libyaml_reads_otherwise_is_reported_as_before(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, pure = _read_both_ways(text, monkeypatch)
    assert fast == pure


def test_unsafe_tags_are_refused() -> None:
    problems = _problems("!!python/object/apply:os.system ['echo hi']\n")
    assert "not valid YAML" in problems[0].message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    when: answers.name\n", None),
        ("    when: \"answers.get('name')\"\n", None),  # a method call, not a step
        ("    when: answers.nobody\n", "no step 'nobody'"),
        ("    when: answers['nobody']\n", "no step 'nobody'"),
        ("    ask: '{{ range(3) | list }}'\n", None),  # Jinja's own globals
        ("    next: end\n", None),
        ("    next: [{goto: end, when: answer}, {goto: end}]\n", None),
    ],
)
def test_names_in_templates(extra: str, expected: str | None) -> None:
    text = MINIMAL + "  - id: second\n    type: text\n" + extra
    if "ask:" not in extra:
        text += "    ask: Second?\n"
    if expected is None:
        load_flow_text(text)
    else:
        assert expected in " ".join(p.message for p in _problems(text))


@pytest.mark.parametrize(
    ("ask", "expected"),
    [
        ("\"{% include 'other.txt' %}\"", "{% include %} cannot work here"),
        ("\"{{ '{{' }\"", "the template does not parse"),
    ],
)
def test_templates_that_cannot_work_are_refused(ask: str, expected: str) -> None:
    problems = _problems(MINIMAL.replace("ask: Name?", f"ask: {ask}"))
    assert expected in problems[0].message


def test_odd_scale_label_keys_are_refused() -> None:
    text = MINIMAL.replace("type: text", "type: scale") + "    labels: {'²': two, yes: y}\n"
    assert [p.message for p in _problems(text)] == [
        "labels: key '²' is not a point of the scale; use numbers",
        "labels: key true is not a point of the scale; use numbers",
    ]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("  - id: b\n    type: text\n    aks: B?\n", ["aks: unknown key; did you mean 'ask'?"]),
        (
            "  - id: b\n    type: yes_no\n    ask: B?\n    next: [{gotoo: end}]\n",
            ["gotoo: unknown key; did you mean 'goto'?"],
        ),
        (
            "  - id: b\n    type: choice\n    ask: B?\n    options: [{vaule: x}, y]\n",
            ["vaule: unknown key; did you mean 'value'?"],
        ),
        ("  - id: b\n    type: text\n    ask:\n", ["ask: is empty; write some text"]),
        ("  - id: b\n    type: choice\n    ask: B?\n", ["options: missing; a choice step"]),
        (
            "  - id: b\n    type: yes_no\n    ask: B?\n    next: [{when: answer}]\n",
            ["goto: missing; next rule 1 needs goto:"],
        ),
        (
            "  - id: b\n    type: text\n    ask: B?\n    save: goal.new\n",
            ["save: use goal.new.<field> with one field"],
        ),
        (
            "  - id: b\n    type: text\n    ask: B?\n    mode: append\n",
            ["mode: has no effect without save:"],
        ),
        (
            "  - id: b\n    type: message\n    say: B\n    optional: true\n",
            ["optional: a message step takes no answer"],
        ),
        (
            "  - id: b\n    type: scale\n    ask: B?\n    min: 5\n",
            ["min: 5 must be below max 5"],
        ),
    ],
)
def test_one_mistake_one_problem(step: str, expected: list[str]) -> None:
    messages = [p.message for p in _problems(MINIMAL + step)]
    assert len(messages) == len(expected), messages
    for message, part in zip(messages, expected, strict=True):
        assert part in message


def test_answers_of_a_message_is_refused() -> None:
    text = MINIMAL + "  - id: hi\n    type: message\n    say: hi\n    when: answers.hi\n"
    assert "is a message and has no answer" in _problems(text)[0].message


def test_status_from_a_text_step_is_refused() -> None:
    text = MINIMAL.replace("ask: Name?", "ask: Name?\n    save: goal.new.status")
    assert "a goal status comes from a choice step" in _problems(text)[0].message


def test_unknown_keys_suggest_without_a_second_missing_problem() -> None:
    problems = _problems(MINIMAL.replace("type: text", "tpye: text"))
    assert [p.message for p in problems] == ["tpye: unknown key; did you mean 'type'?"]


@pytest.mark.skipif(not list(BUILTIN.glob("*.yaml")), reason="no built-in flows yet")
def test_builtin_flows_are_valid() -> None:
    problems = check_flow_files(sorted(BUILTIN.glob("*.yaml")))
    assert problems == [], "\n".join(map(str, problems))


# --------------------------------------------------------------------------- never a traceback


def _refused_cleanly(text: str) -> None:
    try:
        load_flow_text(text, filename="fuzz.yaml")
    except FlowLoadError as exc:
        assert exc.problems
        assert all(p.file == "fuzz.yaml" and p.message for p in exc.problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_flow_load_error(text: str) -> None:
    _refused_cleanly(text)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-20, 20)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.dates()
)
_STEP_WORDS = [
    "id", "type", "ask", "say", "options", "allow_other", "min", "max", "min_length",
    "max_length", "integer", "labels", "optional", "save", "mode", "next", "when",
    "max_retries", "private", "hint", "sensitive", "for_each", "as", "steps", "skip_if_empty",
    "goto", "value", "label",
]  # fmt: skip
_VALUES = [
    *[t.value for t in StepType], "a", "b", "end", "answer", "answers.a", "{{ x", "{{ goal }}",
    "profile.x", "goal.new.title", "goal.status", "checkin.goal.did", "checkin.mood",
    "append", "plan.active_goals", "1d", "active", "ppra",
]  # fmt: skip


def _yamlish(keys: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    leaves = _SCALARS | st.sampled_from(_VALUES)
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
        max_leaves=25,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_yamlish(st.text(max_size=8) | st.integers() | st.sampled_from(_STEP_WORDS)))
def test_arbitrary_yaml_only_raises_flow_load_error(data: Any) -> None:
    _refused_cleanly(yaml.safe_dump(data, allow_unicode=True))


_STEP = st.dictionaries(st.sampled_from(_STEP_WORDS), _yamlish(st.sampled_from(_STEP_WORDS)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {
            "id": st.sampled_from(["flow", "Bad Id", 3]),
            "version": st.sampled_from([1, 0, True, "2"]),
            "title": st.sampled_from(["T", "", None]),
            "steps": st.lists(_STEP, max_size=5),
        },
        optional={
            "settings": st.dictionaries(
                st.sampled_from(
                    ["remind_after", "max_reminders", "expire_after", "max_retries", "anonymous"]
                ),
                _SCALARS | st.sampled_from(["1d", "30m"]),
            ),
            "intro": _SCALARS | st.sampled_from(_VALUES),
        },
    )
)
def test_flow_shaped_yaml_only_raises_flow_load_error(data: dict[str, Any]) -> None:
    _refused_cleanly(yaml.safe_dump(data, allow_unicode=True))


def test_remind_after_without_a_count_means_one_reminder() -> None:
    text = (
        "id: f\nversion: 1\ntitle: F\nsettings:\n  remind_after: 1d\n"
        "steps:\n  - id: a\n    ask: A?\n    type: text\n"
    )
    assert load_flow_text(text).settings.max_reminders == 1
    assert (
        load_flow_text(
            text.replace("  remind_after: 1d\n", "  max_retries: 2\n")
        ).settings.max_reminders
        == 0
    )


def test_anonymous_is_a_flow_setting_off_by_default() -> None:
    text = (
        "id: f\nversion: 1\ntitle: F\nsettings:\n  anonymous: true\n"
        "steps:\n  - id: a\n    ask: A?\n    type: text\n"
    )
    assert load_flow_text(text).settings.anonymous is True
    assert load_flow_text(text.replace("true", "false")).settings.anonymous is False
    assert load_flow_text(text.replace("  anonymous: true\n", "  max_retries: 2\n")).settings == (
        FlowSettings(max_retries=2)
    )
