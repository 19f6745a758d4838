"""A student's profile and plan as readable plain-text cards (every adapter shows these)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dialogues import Flow, Loop, SaveKind, Step, describe_value

__all__ = ["option_labels", "plan_card", "profile_card"]

_HEADINGS: dict[str, str] = {
    "preferred_name": "👋 Call me",
    "strengths": "💪 My strengths",
    "interests": "❤️ What I love",
    "dislikes": "🙅 Not my thing",
    "learning_preferences": "🧠 How I learn best",
    "environment.noise_level": "🔊 Noise I like (1 silent – 5 lively)",
    "environment.social": "👥 Working alone or with others",
    "environment.time_of_day": "🕒 My best time of day",
    "motivation": "🚀 What motivates me",
    "challenges": "🧗 What I find hard",
    "supports": "🛟 What helps when I'm stuck",
    "dreams": "🌟 Goals and dreams",
    "identity.family_culture": "🏡 Family, culture & community",
}


def option_labels(flows: Iterable[Flow]) -> dict[str, dict[str, str]]:
    """For each saved field path, the labels of the option values that fill it."""
    labels: dict[str, dict[str, str]] = {}
    for flow in flows:
        for node in flow.iter_steps():
            if isinstance(node, Loop) or not node.options or node.save is None:
                continue
            labels.setdefault(_field_key(node), {}).update(
                {o.value: o.label for o in node.options if "{" not in o.label}
            )
    return labels


def _field_key(step: Step) -> str:
    assert step.save is not None
    prefix = "" if step.save.kind is SaveKind.PROFILE else f"{step.save.kind.value}."
    return prefix + ".".join(step.save.path)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and not {"kind", "file_id"} <= set(value):
            out.extend(_flatten(value, f"{path}."))
        else:
            out.append((path, value))
    return out


def _show(value: Any, labels: Mapping[str, str]) -> str:
    if isinstance(value, list | tuple):
        return " · ".join(_show(v, labels) for v in value) or "—"
    if isinstance(value, str) and value in labels:
        return labels[value]
    return describe_value(value)


def profile_card(
    name: str,
    profile: Mapping[str, Any],
    *,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    private_fields: Iterable[str] = (),
) -> str:
    """The learner profile, known fields first in interview order, then any others."""
    labels = labels or {}
    private = set(private_fields)
    fields = dict(_flatten(profile))
    if not fields:
        return f"{name} has no learner profile yet. Start it with the 'this_is_me' conversation."
    order = [k for k in _HEADINGS if k in fields] + sorted(k for k in fields if k not in _HEADINGS)
    lines = [f"🪪 {name}'s learner profile", ""]
    for key in order:
        heading = _HEADINGS.get(key) or key.split(".")[-1].replace("_", " ").capitalize()
        lock = " 🔒 (private)" if key in private else ""
        lines.append(f"{heading}{lock}: {_show(fields[key], labels.get(key, {}))}")
    return "\n".join(lines)


def plan_card(
    name: str,
    goals: list[Mapping[str, Any]],
    *,
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """The learning plan: each goal with its why, steps, support and latest check-in."""
    labels = labels or {}
    if not goals:
        return f"{name} has no goals yet. Set some with the 'goal_setting' conversation."
    lines = [f"🎯 {name}'s learning plan"]
    for number, goal in enumerate(goals, start=1):
        lines.extend(["", _goal_title(number, goal, labels)])
        if goal.get("why"):
            lines.append(f"   Why it matters: {goal['why']}")
        for step in goal.get("action_steps") or []:
            lines.append(f"   • {step}")
        if goal.get("support"):
            lines.append(f"   Support I'd like: {goal['support']}")
        last = goal.get("last_checkin")
        if last:
            lines.append(f"   {_checkin_line(last)}")
    return "\n".join(lines)


def _goal_title(
    number: int, goal: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]]
) -> str:
    details = [str(goal.get("status") or "active")]
    if goal.get("category"):
        details.insert(0, _show(goal["category"], labels.get("goal.category", {})))
    if goal.get("target_date"):
        details.append(f"by {goal['target_date']}")
    return f"{number}. {goal.get('title') or '(untitled goal)'} ({', '.join(details)})"


def _checkin_line(last: Mapping[str, Any]) -> str:
    parts = [f"Last check-in {str(last.get('at') or '')[:10]}".rstrip()]
    if last.get("progress") is not None:
        parts.append(f"progress {last['progress']}/5")
    if last.get("next_step"):
        parts.append(f"next: {last['next_step']}")
    return " — ".join(parts)
