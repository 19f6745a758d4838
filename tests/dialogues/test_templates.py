"""Templates and expressions: sandboxed, bounded, and never raising at run time."""

from __future__ import annotations

import pytest

from dialogues._templates import LazyMapping, compile_expression, compile_template


def test_template_renders_names_in_scope() -> None:
    template = compile_template("Hi {{ person.first_name }}, {{ answers.x | default('?') }}")
    assert template.render({"person": {"first_name": "Sam"}, "answers": {}}) == "Hi Sam, ?"


def test_failing_template_shows_its_literal_text() -> None:
    assert compile_template("Hi {{ nobody.name }}").render({}) == "Hi {{ nobody.name }}"


@pytest.mark.parametrize(
    "source",
    [
        "{{ 2 ** 100000000 }}",
        "{{ 9 ** 9 ** 9 ** 9 ** 9 }}",
        "{{ 'x' * 10 ** 9 }}",
        "{{ [1] * 100000000 }}",
        "{{ ().__class__ }}",
    ],
)
def test_sandbox_refuses_huge_or_unsafe_work(source: str) -> None:
    assert compile_template(source).render({}) == source


def test_small_arithmetic_still_works() -> None:
    assert compile_template("{{ 2 ** 10 }} {{ 'ab' * 3 }}").render({}) == "1024 ababab"


def test_failing_expression_is_false_and_value_is_none() -> None:
    assert compile_expression("answers.missing > 2").evaluate({"answers": {}}) is False
    assert compile_expression("plan.goals").value({}) is None


def test_lazy_mapping_loads_once_and_only_when_read() -> None:
    calls: list[int] = []

    def load() -> dict[str, int]:
        calls.append(1)
        return {"a": 1}

    lazy = LazyMapping(load)
    assert calls == []
    assert compile_template("{{ p.a }}{{ p.a }}").render({"p": lazy}) == "11"
    assert calls == [1]
