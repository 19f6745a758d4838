"""Compiles a flow into one `transitions` state machine, built once per flow content.

States are step ids (a `for_each` loop is a state too: its head) plus `end` and a start
state. The machine holds no conversation: it is created with ``model=None`` and fired with
``machine.events[name].trigger(cursor, scope=...)`` on a throwaway cursor whose ``state``
comes from the database. Events:

- ``answered``: leave a step after its answer (or a skip); the step's `next` rules become
  conditional transitions in file order, so the first matching rule wins, then the step
  that follows in the file.
- ``bypassed``: leave a step whose `when` is false: the step that follows in the file.
- ``iterate``: at a loop head: into the loop's first step while there is an item, else to
  `skip_if_empty` (when the loop had no items at all), else past the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transitions import EventData, Machine

from ._messages import Option
from ._schema import END, Flow, Loop, Step
from ._state import START
from ._templates import Expression, Template, compile_expression, compile_template

__all__ = ["START", "CompiledFlow", "compile_flow", "machines_built"]

_lock = threading.Lock()
_cache: dict[str, CompiledFlow] = {}
_built = 0


def machines_built() -> int:
    """How many state machines this process has constructed (benchmarks count these)."""
    return _built


class Cursor:
    """The model `transitions` moves: just a state name, loaded from the database."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """A flow with its machine, templates and expressions, shared by every conversation."""

    flow: Flow
    machine: Machine
    nodes: dict[str, Step | Loop]
    parent: dict[str, str | None]  # step id -> enclosing loop id
    templates: dict[str, Template]  # keyed "<step id>.<what>" (ask, hint, label:<value>)
    conditions: dict[str, Expression]  # step `when` and loop sources, keyed by id
    first_child: dict[str, str]  # loop id -> its first step id
    static_options: dict[str, tuple[Option, ...]]  # steps whose labels have no template

    def fire(self, event: str, state: str, **kwargs: Any) -> str:
        cursor = Cursor(state)
        self.machine.events[event].trigger(cursor, **kwargs)
        return cursor.state

    def template(self, key: str) -> Template | None:
        return self.templates.get(key)


def compile_flow(flow: Flow) -> CompiledFlow:
    """The compiled form of ``flow``, built once per content hash and reused after."""
    key = flow.content_hash or f"{flow.id}@{id(flow)}"
    compiled = _cache.get(key)
    if compiled is not None:
        return compiled
    with _lock:
        compiled = _cache.get(key)
        if compiled is None:
            compiled = _build(flow)
            _cache[key] = compiled
    return compiled


def _build(flow: Flow) -> CompiledFlow:
    global _built
    nodes: dict[str, Step | Loop] = {}
    parent: dict[str, str | None] = {}
    successor: dict[str, str] = {}
    first_child: dict[str, str] = {}
    _index(flow.steps, None, END, nodes, parent, successor, first_child)

    transitions: list[dict[str, Any]] = []
    first = flow.steps[0].id
    transitions.append({"trigger": "answered", "source": START, "dest": first})
    for node in nodes.values():
        follow = successor[node.id]
        transitions.append({"trigger": "bypassed", "source": node.id, "dest": follow})
        if isinstance(node, Loop):
            transitions.extend(_loop_transitions(node, first_child[node.id], follow))
        else:
            transitions.extend(_step_transitions(node, follow))

    machine = Machine(
        model=None,
        states=[START, END, *nodes],
        transitions=transitions,
        initial=START,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )
    _built += 1
    return CompiledFlow(
        flow=flow,
        machine=machine,
        nodes=nodes,
        parent=parent,
        templates=_templates(flow, nodes),
        conditions=_conditions(nodes),
        first_child=first_child,
        static_options=_static_options(nodes),
    )


def _index(
    items: tuple[Step | Loop, ...],
    loop_id: str | None,
    after: str,
    nodes: dict[str, Step | Loop],
    parent: dict[str, str | None],
    successor: dict[str, str],
    first_child: dict[str, str],
) -> None:
    """Record every node, its enclosing loop and the node that follows it in the file."""
    for position, item in enumerate(items):
        nodes[item.id] = item
        parent[item.id] = loop_id
        successor[item.id] = items[position + 1].id if position + 1 < len(items) else after
        if isinstance(item, Loop):
            first_child[item.id] = item.steps[0].id
            _index(item.steps, item.id, item.id, nodes, parent, successor, first_child)


def _step_transitions(step: Step, follow: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rule in step.next:
        spec: dict[str, Any] = {"trigger": "answered", "source": step.id, "dest": rule.goto}
        if rule.when is not None:
            spec["conditions"] = [_condition(compile_expression(rule.when))]
        out.append(spec)
        if rule.when is None:
            return out
    out.append({"trigger": "answered", "source": step.id, "dest": follow})
    return out


def _loop_transitions(loop: Loop, first: str, follow: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"trigger": "iterate", "source": loop.id, "dest": first, "conditions": [_flag("has_item")]}
    ]
    if loop.skip_if_empty:
        out.append(
            {
                "trigger": "iterate",
                "source": loop.id,
                "dest": loop.skip_if_empty,
                "conditions": [_flag("was_empty")],
            }
        )
    out.append({"trigger": "iterate", "source": loop.id, "dest": follow})
    return out


def _condition(expression: Expression) -> Callable[[EventData], bool]:
    def check(event: EventData) -> bool:
        return expression.evaluate(event.kwargs["scope"])

    return check


def _flag(name: str) -> Callable[[EventData], bool]:
    def check(event: EventData) -> bool:
        return bool(event.kwargs.get(name))

    return check


def _templates(flow: Flow, nodes: dict[str, Step | Loop]) -> dict[str, Template]:
    out: dict[str, Template] = {}
    if flow.intro:
        out["flow.intro"] = compile_template(flow.intro)
    if flow.outro:
        out["flow.outro"] = compile_template(flow.outro)
    for node in nodes.values():
        if isinstance(node, Loop):
            continue
        out[f"{node.id}.ask"] = compile_template(node.ask)
        if node.hint:
            out[f"{node.id}.hint"] = compile_template(node.hint)
        for option in node.options:
            out[f"{node.id}.label:{option.value}"] = compile_template(option.label)
    return out


def _static_options(nodes: dict[str, Step | Loop]) -> dict[str, tuple[Option, ...]]:
    return {
        node.id: tuple(Option(o.value, o.label) for o in node.options)
        for node in nodes.values()
        if isinstance(node, Step) and node.options and all("{" not in o.label for o in node.options)
    }


def _conditions(nodes: dict[str, Step | Loop]) -> dict[str, Expression]:
    out: dict[str, Expression] = {}
    for node in nodes.values():
        if node.when:
            out[f"{node.id}.when"] = compile_expression(node.when)
        if isinstance(node, Loop):
            out[f"{node.id}.source"] = compile_expression(node.source)
    return out
