"""Load dialogue flow files (YAML) into immutable `Flow` objects, refusing every broken one.

The format is a contract with people who are not programmers: a file that breaks it must be
refused when it is loaded, never in the middle of a student's conversation. So the loader
collects *every* problem it can find — file, line, step id, what is wrong and what would be
right — and raises them together in one `FlowLoadError`.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
import unicodedata
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import yaml
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ._schema import (
    CHECKIN_FIELDS,
    CHECKIN_GOAL_FIELDS,
    END,
    GOAL_FIELDS,
    GOAL_STATUSES,
    SENSITIVE_KINDS,
    Audience,
    Flow,
    FlowSettings,
    Loop,
    NextRule,
    OptionSpec,
    SaveKind,
    SaveTarget,
    Step,
    StepType,
)
from ._templates import (
    TemplateSyntaxError,
    compile_expression,
    compile_template,
    names_used,
    parse,
)
from .errors import FlowLoadError, FlowProblem

try:
    from yaml import CSafeLoader as _CSafeLoader
except ImportError:  # PyYAML built without libyaml: the pure parser does it all
    _CSafeLoader = yaml.SafeLoader  # type: ignore[misc,assignment]

__all__ = [
    "check_flow_files",
    "load_flow_file",
    "load_flow_files",
    "load_flow_text",
    "parse_duration",
]

# --------------------------------------------------------------------------- vocabulary

_FLOW_ID = re.compile(r"[a-z][a-z0-9_]*")
_STEP_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # starts with a letter so answers.<id> works
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"([0-9]+)\s*([mhdw])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}

_FLOW_KEYS = (
    "id",
    "version",
    "title",
    "audience",
    "intro",
    "outro",
    "description",
    "settings",
    "steps",
)
_REQUIRED = {
    "id": "add id: <snake_case name>, e.g. id: this_is_me",
    "version": "add version: 1 (and bump it when you change questions)",
    "title": "add a title people will see, e.g. title: This is me",
    "steps": "add steps: with at least one step",
}
_SETTINGS_KEYS = ("remind_after", "max_reminders", "expire_after", "max_retries", "anonymous")
_LOOP_KEYS = frozenset({"id", "for_each", "as", "steps", "skip_if_empty", "when"})
_LENGTH_KEYS = frozenset({"min_length", "max_length"})  # free text: text, list items, "other"
_ASKING_KEYS = frozenset(
    {"id", "type", "ask", "optional", "save", "mode", "next", "when", "max_retries"}
    | {"private", "hint", "sensitive"}
)
_TYPE_KEYS: dict[StepType, frozenset[str]] = {
    StepType.TEXT: _ASKING_KEYS | _LENGTH_KEYS,
    StepType.NUMBER: _ASKING_KEYS | {"min", "max", "integer"},
    StepType.CHOICE: _ASKING_KEYS | _LENGTH_KEYS | {"options", "allow_other"},
    StepType.MULTI_CHOICE: _ASKING_KEYS | _LENGTH_KEYS | {"options", "allow_other", "min", "max"},
    StepType.SCALE: _ASKING_KEYS | {"min", "max", "labels"},
    StepType.YES_NO: _ASKING_KEYS,
    StepType.DATE: _ASKING_KEYS,
    StepType.LIST: _ASKING_KEYS | _LENGTH_KEYS | {"min", "max"},
    StepType.FILE: _ASKING_KEYS,
    StepType.MESSAGE: frozenset({"id", "type", "say", "ask", "next", "when", "sensitive"}),
}
_STEP_KEYS = frozenset().union(*_TYPE_KEYS.values())
_ANY_STEP_KEYS = _STEP_KEYS | _LOOP_KEYS
_OPTION_TYPES = (StepType.CHOICE, StepType.MULTI_CHOICE)
_OPTION_KEYS = ("label", "value")
_RULE_KEYS = ("goto", "when")
_SCALE_DEFAULT = (1, 5)
_SCALE_MAX_SPAN = 10

_BASE_NAMES = frozenset({"answers", "person", "profile", "plan", "today"})
_ANSWER = "answer"
_JINJA_GLOBALS = frozenset(ImmutableSandboxedEnvironment().globals)
_SAVE_HELP = (
    "profile.<field>, goal.new.<field>, goal.<field>, goal.action_steps, "
    "checkin.<field>, checkin.goal.<field> or reflection.<field>"
)


# --------------------------------------------------------------------------- YAML with lines


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers its line, each key's line and scalar values as written."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.raw: dict[Any, str] = {}
        self.parent: _Map | _Seq | None = None

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class _Seq(list[Any]):
    """A YAML sequence that remembers its line, each item's line and scalar items as written."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []
        self.raw: list[str | None] = []
        self.parent: _Map | _Seq | None = None


@dataclass(frozen=True, slots=True)
class _Duplicate:
    mapping: _Map
    key: Any
    line: int
    first_line: int


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that keeps line numbers and reports duplicate keys PyYAML would hide."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[_Duplicate] = []


class _FastLineLoader(_CSafeLoader):
    """The same on libyaml's parser, much quicker on a long flow; its nodes carry
    the same marks, so the same lines. Its messages for broken YAML are worded differently,
    so a file it refuses is read again by `_LineLoader` to say what is wrong."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[_Duplicate] = []


_Loader: TypeAlias = _LineLoader | _FastLineLoader
_FAST_LOADER: type[_FastLineLoader] | None = _FastLineLoader if yaml.__with_libyaml__ else None


def _adopt(child: Any, parent: _Map | _Seq) -> None:
    if isinstance(child, _Map | _Seq):
        child.parent = parent


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Map]:
    data = _Map(node.start_mark.line + 1)
    yield data
    own = {id(key_node) for key_node, _ in node.value}  # merged (<<) keys may be overridden
    loader.flatten_mapping(node)
    first_lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found a list or mapping as a key",
                key_node.start_mark,
            )
        line = key_node.start_mark.line + 1
        if id(key_node) in own:
            if key in first_lines:
                loader.duplicates.append(_Duplicate(data, key, line, first_lines[key]))
            first_lines.setdefault(key, line)
        value = loader.construct_object(value_node, deep=False)
        _adopt(value, data)
        data[key] = value
        data.key_lines[key] = line
        if isinstance(value_node, yaml.ScalarNode):
            data.raw[key] = value_node.value
        else:
            data.raw.pop(key, None)


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Iterator[_Seq]:
    data = _Seq(node.start_mark.line + 1)
    yield data
    for child in node.value:
        value = loader.construct_object(child, deep=False)
        _adopt(value, data)
        data.append(value)
        data.lines.append(child.start_mark.line + 1)
        data.raw.append(child.value if isinstance(child, yaml.ScalarNode) else None)


for _kind in (_LineLoader, _FastLineLoader):
    _kind.add_constructor("tag:yaml.org,2002:map", _construct_map)
    _kind.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


# --------------------------------------------------------------------------- collecting problems


@dataclass(frozen=True, slots=True)
class _IdInfo:
    line: int
    kind: str  # "step" | "message" | "loop"


@dataclass(slots=True)
class _Ctx:
    """Everything one file's check accumulates: problems, ids, and file-order facts."""

    file: str
    problems: list[FlowProblem] = field(default_factory=list)
    ids: dict[str, _IdInfo] = field(default_factory=dict)
    step_maps: dict[int, str] = field(default_factory=dict)  # id(_Map) -> step id
    aliases: set[str] = field(default_factory=set)  # every loop alias in the file
    goal_new_seen: bool = False
    active: set[int] = field(default_factory=set)  # step lists being read (alias cycles)

    def add(self, line: int | None, step_id: str | None, message: str) -> None:
        self.problems.append(FlowProblem(self.file, line, step_id, message))


@dataclass(frozen=True, slots=True)
class _Scope:
    """Loop aliases visible where a template or expression is written."""

    aliases: tuple[str, ...] = ()

    @property
    def in_loop(self) -> bool:
        return bool(self.aliases)


class _Fields:
    """Typed reads from one YAML mapping; each bad value becomes a problem at its key's line."""

    __slots__ = ("allowed", "ctx", "map", "step_id")

    def __init__(
        self, ctx: _Ctx, mapping: _Map, step_id: str | None, allowed: frozenset[str] | None = None
    ) -> None:
        self.ctx = ctx
        self.map = mapping
        self.step_id = step_id
        self.allowed = allowed  # keys outside it were reported already; read them as absent

    def __contains__(self, key: str) -> bool:
        return key in self.map and (self.allowed is None or key in self.allowed)

    def problem(self, key: str, message: str, *, line: int | None = None) -> None:
        self.ctx.add(line or self.map.line_of(key), self.step_id, f"{key}: {message}")

    def text(self, key: str) -> str | None:
        """A text value; numbers and yes/no written bare count as the text typed."""
        if key not in self:
            return None
        value = _scalar_text(self.map[key], self.map.raw.get(key))
        if value is None and self.map[key] is not None:
            self.problem(key, f"must be text, got {_show(self.map[key])}")
        elif value is None or not value.strip():
            self.problem(key, "is empty; write some text or remove the key")
            return None
        return value

    def expression(self, key: str) -> str | None:
        if key not in self:
            return None
        value = self.map[key]
        if isinstance(value, bool):  # YAML `true` means the Jinja literal
            return "true" if value else "false"
        return self.text(key)

    def integer(self, key: str, minimum: int) -> int | None:
        if key not in self:
            return None
        value = self.map[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problem(key, f"must be a whole number >= {minimum}, got {_show(value)}")
            return None
        return value

    def number(self, key: str) -> float | None:
        if key not in self:
            return None
        value = self.map[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.problem(key, f"must be a number, got {_show(value)}")
            return None
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            self.problem(key, f"must be a finite number, got {_show(value)}")
            return None
        return value

    def flag(self, key: str) -> bool:
        value = self.map[key] if key in self else False
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {_show(value)}")
            return False
        return value


def _show(value: Any) -> str:
    """A value as a short phrase for messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _Map):
        return "a mapping"
    if isinstance(value, _Seq):
        return "a list"
    if isinstance(value, list | set | dict):
        return f"a tagged YAML collection ({type(value).__name__})"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _scalar_text(value: Any, raw: str | None) -> str | None:
    """The text of a scalar as the author typed it (`yes` stays "yes", not True)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, dict | list | set | bytes):
        return None
    return raw if raw is not None else str(value)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, sorted(choices), n=1)
    return f"; did you mean '{match[0]}'?" if match else ""


def _listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _check_keys(f: _Fields, allowed: Iterable[str], prefer: Iterable[str] | None = None) -> None:
    """Report unknown keys (typo protection), suggesting the closest allowed one.

    ``prefer`` (the keys that mean something here) is searched first, so `aks` on a text step
    suggests `ask`, not the loop key `as`.
    """
    names = sorted(allowed)
    preferred = sorted(prefer) if prefer is not None else names
    for key in f.map:
        if isinstance(key, str) and key in names:
            continue
        name = key if isinstance(key, str) else _show(key)
        match = difflib.get_close_matches(name, preferred, n=1) or difflib.get_close_matches(
            name, names, n=1
        )
        hint = f"did you mean '{match[0]}'?" if match else f"known keys: {', '.join(names)}"
        f.problem(name, f"unknown key; {hint}", line=f.map.line_of(key))


def _report_missing(f: _Fields, key: str, fix: str, allowed: Iterable[str]) -> None:
    """`key: missing`, unless an unknown key is its typo (reported already, with the fix)."""
    names = set(allowed)
    typos = [k for k in f.map if isinstance(k, str) and k not in names]
    if not any(difflib.get_close_matches(typo, [key]) for typo in typos):
        f.problem(key, f"missing; {fix}", line=f.map.line)


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True, slots=True)
class _Parsed:
    names: set[str]  # top-level names read
    answer_refs: list[str]  # ids read as answers.<id>
    loads: list[str]  # include/extends/import tags, which cannot work in a flow


def _parse_source(source: str, *, expression: bool) -> _Parsed | str:
    """What a template or expression reads, or why it does not parse."""
    kind = "expression" if expression else "template"
    if not expression and "{" not in source:  # plain text: no tag, no name, nothing to parse
        return _Parsed(set(), [], [])
    try:
        if expression:
            compile_expression(source)
        ast = parse(source, expression=expression)
        parsed = _Parsed(names_used(ast), _answer_refs(ast), _loads(ast))
        if not expression:
            compile_template(source, ast)  # the parse above, compiled once read
        return parsed
    except TemplateSyntaxError as exc:
        where = f" (line {exc.lineno} of the {kind})" if "\n" in source.strip() else ""
        return f"the {kind} does not parse: {exc.message}{where}"
    except Exception as exc:  # any Jinja failure (deep nesting, huge literals) is the author's
        return f"the {kind} does not parse: {type(exc).__name__}: {exc}"


def _answer_refs(ast: nodes.Template) -> list[str]:
    """Step ids read as `answers.<id>` or `answers['<id>']` (method calls excluded)."""
    callees = {id(call.node) for call in ast.find_all(nodes.Call)}
    refs: list[str] = []
    for node in ast.find_all(nodes.Getattr):
        if _is_answers(node.node) and id(node) not in callees:
            refs.append(node.attr)
    for item in ast.find_all(nodes.Getitem):
        arg = item.arg
        if _is_answers(item.node) and isinstance(arg, nodes.Const) and isinstance(arg.value, str):
            refs.append(arg.value)
    return refs


def _loads(ast: nodes.Template) -> list[str]:
    kinds = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
    names = {nodes.Extends: "extends", nodes.Include: "include", nodes.FromImport: "import"}
    return [names.get(type(node), "import") for node in ast.find_all(kinds)]


def _is_answers(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "answers"


def _check_source(
    f: _Fields,
    key: str,
    source: str,
    scope: _Scope,
    *,
    expression: bool = False,
    answer_ok: bool = False,
    line: int | None = None,
) -> None:
    """Refuse a template or expression that does not parse or reads a name nobody provides."""
    parsed = _parse_source(source, expression=expression)
    if isinstance(parsed, str):
        f.problem(key, parsed, line=line)
        return
    known = _BASE_NAMES | set(scope.aliases) | ({_ANSWER} if answer_ok else set())
    for name in sorted(parsed.names - known - _JINJA_GLOBALS):
        f.problem(key, _unknown_name(f.ctx, name, known), line=line)
    for ref in parsed.answer_refs:
        message = _answer_ref_problem(f.ctx, ref)
        if message:
            f.problem(key, message, line=line)
    for tag in parsed.loads:
        f.problem(
            key,
            f"{{% {tag} %}} cannot work here: flow templates load no other files; "
            "write the text out",
        )


def _unknown_name(ctx: _Ctx, name: str, known: frozenset[str] | set[str]) -> str:
    if name == _ANSWER:
        return "'answer' only exists in next: rules; use answers.<step_id> here"
    if name == "goal" or name in ctx.aliases:
        return f"'{name}' only exists inside the steps of a for_each loop (as: {name})"
    return f"unknown name '{name}' (known names: {_listing(known)}){_did_you_mean(name, known)}"


def _answer_ref_problem(ctx: _Ctx, ref: str) -> str | None:
    info = ctx.ids.get(ref)
    if info is None:
        hint = _did_you_mean(ref, ctx.ids) or "; use the id of a step that asks"
        return f"answers.{ref}: there is no step '{ref}' in this flow{hint}"
    if info.kind != "step":
        what = "a message" if info.kind == "message" else "a for_each loop"
        return f"answers.{ref}: '{ref}' is {what} and has no answer; use a step that asks"
    return None


# --------------------------------------------------------------------------- steps


def _collect_ids(ctx: _Ctx, steps: Any) -> None:
    """First pass: every step and loop id, so `goto` and `answers.<id>` may point forward."""
    if not isinstance(steps, _Seq) or id(steps) in ctx.active:
        return
    ctx.active.add(id(steps))
    for item in steps:
        if not isinstance(item, _Map):
            continue
        step_id = item.get("id")
        if isinstance(step_id, str) and step_id:
            _note_id(ctx, item, step_id)
        if "for_each" in item:
            _collect_ids(ctx, item.get("steps"))
    ctx.active.discard(id(steps))


def _note_id(ctx: _Ctx, item: _Map, step_id: str) -> None:
    line = item.line_of("id")
    ctx.step_maps[id(item)] = step_id
    if step_id == END:
        ctx.add(line, step_id, "id: 'end' is reserved for goto: end; choose another id")
    elif step_id in ctx.ids:
        first = ctx.ids[step_id].line
        ctx.add(
            line, step_id, f"id: '{step_id}' is already used on line {first}; ids must be unique"
        )
    else:
        kind = (
            "loop" if "for_each" in item else "message" if item.get("type") == "message" else "step"
        )
        ctx.ids[step_id] = _IdInfo(line, kind)


def _read_steps(ctx: _Ctx, owner: _Fields, scope: _Scope) -> tuple[Step | Loop, ...]:
    """The `steps:` list of a flow or loop, in file order."""
    value = owner.map.get("steps")
    if "steps" not in owner.map:
        return ()
    if not isinstance(value, _Seq):
        owner.problem("steps", f"must be a list of steps, got {_show(value)}")
        return ()
    if not value:
        owner.problem("steps", "is empty; add at least one step")
        return ()
    if id(value) in ctx.active:
        owner.problem("steps", "contains itself through a YAML alias; write the steps out")
        return ()
    ctx.active.add(id(value))
    out = [
        _read_item(ctx, item, line, scope) for item, line in zip(value, value.lines, strict=True)
    ]
    ctx.active.discard(id(value))
    return tuple(item for item in out if item is not None)


def _read_item(ctx: _Ctx, item: Any, line: int, scope: _Scope) -> Step | Loop | None:
    if not isinstance(item, _Map):
        ctx.add(line, None, f"a step must be a mapping with id, type and ask, got {_show(item)}")
        return None
    f = _Fields(ctx, item, ctx.step_maps.get(id(item)))
    _check_step_id(f)
    if "for_each" in item:
        return _read_loop(f, scope)
    return _read_step(f, scope)


def _check_step_id(f: _Fields) -> None:
    if "id" not in f:
        fix = "every step needs an id (letters, digits and _), e.g. id: goal_why"
        _report_missing(f, "id", fix, _ANY_STEP_KEYS)
        return
    value = f.text("id")
    if value is not None and not _STEP_ID.fullmatch(value):
        f.problem(
            "id",
            f"{_show(value)} is not a step id; use letters, digits and _ "
            f"starting with a letter, e.g. '{_slug(value)}'",
        )


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    return slug if slug[:1].isalpha() else f"step_{slug}".rstrip("_")


def _read_loop(f: _Fields, scope: _Scope) -> Loop:
    for key in f.map:
        if isinstance(key, str) and key in _STEP_KEYS and key not in _LOOP_KEYS:
            f.problem(
                key,
                "not used by a for_each loop (it takes id, for_each, as, steps, "
                "skip_if_empty, when); put it on a step inside the loop",
            )
    _check_keys(f, _ANY_STEP_KEYS, _LOOP_KEYS)
    alias = _loop_alias(f)
    source = _read_expression(f, "for_each", scope)
    when = _read_expression(f, "when", scope)
    skip = _read_target(f, "skip_if_empty")
    if "steps" not in f:
        _report_missing(f, "steps", "a for_each loop needs the steps it repeats", _ANY_STEP_KEYS)
    f.ctx.aliases.add(alias)
    steps = _read_steps(f.ctx, f, _Scope((*scope.aliases, alias)))
    return Loop(
        id=f.step_id or "",
        source=source or "",
        alias=alias,
        steps=steps,
        skip_if_empty=skip,
        when=when,
        line=f.map.line,
    )


def _loop_alias(f: _Fields) -> str:
    alias = f.text("as")
    if alias is None:
        return "goal"
    if not _NAME.fullmatch(alias):
        f.problem("as", f"{_show(alias)} is not a name; use letters, digits and _, e.g. as: goal")
    elif alias in _BASE_NAMES or alias == _ANSWER:
        f.problem("as", f"'{alias}' is already a name in templates; choose another, e.g. as: goal")
    return alias


def _read_step(f: _Fields, scope: _Scope) -> Step | None:
    step_type = _step_type(f)
    when = _read_expression(f, "when", scope)
    rules = _read_next(f, scope)
    if step_type is None:
        _check_keys(f, _ANY_STEP_KEYS)
        return None
    _check_type_keys(f, step_type)
    f = _Fields(f.ctx, f.map, f.step_id, _TYPE_KEYS[step_type])
    ask = _step_text(f, step_type, scope)
    options = _read_options(f, step_type, scope)
    allow_other, private = f.flag("allow_other"), f.flag("private")
    low, high, min_len, max_len = _read_bounds(f, step_type, options, allow_other)
    return Step(
        id=f.step_id or "",
        type=step_type,
        ask=ask,
        options=options,
        allow_other=allow_other,
        min=low,
        max=high,
        min_length=min_len,
        max_length=max_len,
        integer=f.flag("integer"),
        labels=_read_labels(f, step_type, scope, low, high),
        optional=f.flag("optional"),
        save=_read_save(f, step_type, options, scope, private=private),
        next=rules,
        when=when,
        max_retries=f.integer("max_retries", 1),
        private=private,
        hint=_read_template(f, "hint", scope),
        sensitive=_read_sensitive(f),
        line=f.map.line,
    )


def _read_sensitive(f: _Fields) -> str | None:
    """`sensitive: ppra`; anything else (`yes`, `true`) is refused rather than guessed at:
    a step meant to need consent must never be asked without it."""
    if "sensitive" not in f:
        return None
    value = _scalar_text(f.map["sensitive"], f.map.raw.get("sensitive"))
    if value not in SENSITIVE_KINDS:
        shown = _show(f.map["sensitive"]) if value is None else repr(value)
        f.problem(
            "sensitive",
            f"{shown} is not a kind of sensitive question; write sensitive: ppra (a question "
            "about family, beliefs, mental health or another PPRA category, asked only with "
            "a parent's consent) or remove the key",
        )
        return None
    return value


def _step_type(f: _Fields) -> StepType | None:
    types = [t.value for t in StepType]
    if "type" not in f:
        fix = f"add type: one of {', '.join(types)} (or for_each: to repeat steps)"
        _report_missing(f, "type", fix, _ANY_STEP_KEYS)
        return None
    value = f.text("type")
    if value is None:
        return None
    if value not in types:
        hint = _did_you_mean(value, types)
        f.problem("type", f"'{value}' is not a step type (types: {', '.join(types)}){hint}")
        return None
    return StepType(value)


def _check_type_keys(f: _Fields, step_type: StepType) -> None:
    """Keys a step of this type would silently ignore are mistakes: say so."""
    meaningful = _TYPE_KEYS[step_type]
    for key in f.map:
        if isinstance(key, str) and key in _ANY_STEP_KEYS and key not in meaningful:
            f.problem(key, _meaningless(key, step_type))
    _check_keys(f, _ANY_STEP_KEYS, meaningful)


def _meaningless(key: str, step_type: StepType) -> str:
    if key in _LOOP_KEYS:
        return "only a for_each loop takes this; add for_each: or remove it"
    if key == "say":
        return f"only message steps say things; use ask: on a {step_type} step"
    if step_type is StepType.MESSAGE and key in _ASKING_KEYS:
        return f"a message step takes no answer, so it has no {key}; remove it"
    users = [t.value for t, keys in _TYPE_KEYS.items() if key in keys]
    return f"a {step_type} step does not use {key}; only {', '.join(users)} steps do"


def _step_text(f: _Fields, step_type: StepType, scope: _Scope) -> str:
    if step_type is StepType.MESSAGE:
        if "say" in f and "ask" in f:
            f.problem("ask", "a message step takes say: or ask:, not both; keep say:")
        key = "say" if "say" in f or "ask" not in f else "ask"
        if key not in f:
            _report_missing(f, "say", "a message step needs say: <text to send>", _ANY_STEP_KEYS)
    else:
        key = "ask"
        if key not in f:
            fix = f"a {step_type} step needs ask: <question>"
            _report_missing(f, "ask", fix, _ANY_STEP_KEYS)
    return _read_template(f, key, scope) or ""


def _read_template(f: _Fields, key: str, scope: _Scope) -> str | None:
    source = f.text(key)
    if source is not None:
        _check_source(f, key, source, scope)
    return source


def _read_expression(f: _Fields, key: str, scope: _Scope, *, answer_ok: bool = False) -> str | None:
    source = f.expression(key)
    if source is not None:
        _check_source(f, key, source, scope, expression=True, answer_ok=answer_ok)
    return source


def _read_target(f: _Fields, key: str) -> str | None:
    """A step id (or `end`) that must exist somewhere in this flow."""
    target = f.text(key)
    if target is None or target == END or target in f.ctx.ids:
        return target
    hint = _did_you_mean(target, f.ctx.ids) or "; use a step id or end"
    f.problem(key, f"'{target}' is not a step in this flow{hint}")
    return target


# --------------------------------------------------------------------------- options & bounds


def _read_options(f: _Fields, step_type: StepType, scope: _Scope) -> tuple[OptionSpec, ...]:
    if step_type not in _OPTION_TYPES:
        return ()
    fix = f"a {step_type} step needs options: [first, second, ...]"
    value = f.map.get("options")
    if "options" not in f:
        _report_missing(f, "options", fix, _ANY_STEP_KEYS)
        return ()
    if not isinstance(value, _Seq):
        f.problem("options", f"must be a list, got {_show(value)}; {fix}")
        return ()
    options = [_read_option(f, value, i, scope) for i in range(len(value))]
    found = tuple(o for o in options if o is not None)
    if len(value) < 2:
        f.problem("options", f"a {step_type} step needs at least 2 options, got {len(value)}")
    _check_unique_values(f, value, options)
    return found


def _read_option(f: _Fields, seq: _Seq, index: int, scope: _Scope) -> OptionSpec | None:
    item, line, where = seq[index], seq.lines[index], f"options[{index + 1}]"
    if isinstance(item, _Map):
        sub = _Fields(f.ctx, item, f.step_id)
        _check_keys(sub, _OPTION_KEYS)
        value = sub.text("value")
        if "value" not in item:
            _report_missing(
                sub, "value", f'{where} needs {{value: v, label: "Text"}}', _OPTION_KEYS
            )
        label = sub.text("label") or value
    else:
        value = label = _scalar_text(item, seq.raw[index])
        if value is None:
            f.problem(where, f"must be a value or {{value, label}}, got {_show(item)}", line=line)
        elif not value.strip():
            f.problem(where, "is empty; write the option's text", line=line)
            return None
    if value is None or label is None:
        return None
    _check_source(f, where, label, scope, line=line)
    return OptionSpec(value, label)


def _fold(text: str) -> str:
    """How a student's typing is matched: case- and accent-insensitive."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _check_unique_values(f: _Fields, seq: _Seq, options: list[OptionSpec | None]) -> None:
    seen: dict[str, str] = {}
    for option, line in zip(options, seq.lines, strict=True):
        if option is None:
            continue
        key = _fold(option.value)
        if key in seen:
            f.problem(
                "options",
                f"value '{option.value}' repeats '{seen[key]}' (case and accents "
                "are ignored when students type); make each value different",
                line=line,
            )
        seen.setdefault(key, option.value)


_Bounds = tuple[float | None, float | None, int | None, int | None]


def _read_bounds(
    f: _Fields, step_type: StepType, options: tuple[OptionSpec, ...], allow_other: bool
) -> _Bounds:
    """min/max and min_length/max_length as the step type means them."""
    lengths = _length_bounds(f, step_type, allow_other)
    if step_type is StepType.NUMBER:
        return (*_number_bounds(f), *lengths)
    if step_type is StepType.SCALE:
        return (*_scale_bounds(f), *lengths)
    if step_type is StepType.MULTI_CHOICE:
        available = None if allow_other else len(options)
        return (*_count_bounds(f, available, "picks"), *lengths)
    if step_type is StepType.LIST:
        low, high = _count_bounds(f, None, "items")
        return (1 if low is None else low), high, *lengths  # a list asks for one item at least
    return None, None, *lengths


def _length_bounds(
    f: _Fields, step_type: StepType, allow_other: bool
) -> tuple[int | None, int | None]:
    """Lengths of typed text: a text answer, each list item, or a choice's free "other"."""
    low, high = f.integer("min_length", 1), f.integer("max_length", 1)
    if step_type in _OPTION_TYPES and not allow_other:
        for key in ("min_length", "max_length"):
            if key in f:
                f.problem(
                    key,
                    "limits free text, which needs allow_other: true; add it or remove this key",
                )
    if low is not None and high is not None and low > high:
        f.problem("min_length", f"{low} is more than max_length {high}; min_length <= max_length")
    return low, high


def _number_bounds(f: _Fields) -> tuple[float | None, float | None]:
    low, high = f.number("min"), f.number("max")
    if low is not None and high is not None and low > high:
        f.problem("min", f"{low} is more than max {high}; min must be <= max")
    return low, high


def _scale_bounds(f: _Fields) -> tuple[int, int]:
    low = _scale_end(f, "min", _SCALE_DEFAULT[0])
    high = _scale_end(f, "max", _SCALE_DEFAULT[1])
    if low >= high:
        f.problem("min", f"{low} must be below max {high} (min defaults to 1, max to 5)")
    elif high - low > _SCALE_MAX_SPAN:
        f.problem(
            "max",
            f"a scale of {low}..{high} has {high - low + 1} points; at most "
            f"{_SCALE_MAX_SPAN + 1} fit one row of buttons (max - min <= {_SCALE_MAX_SPAN})",
        )
    return low, high


def _scale_end(f: _Fields, key: str, default: int) -> int:
    if key not in f:
        return default
    value = f.map[key]
    if isinstance(value, bool) or not isinstance(value, int):
        f.problem(key, f"must be a whole number on a scale, got {_show(value)}")
        return default
    return value


def _count_bounds(f: _Fields, available: int | None, noun: str) -> tuple[int | None, int | None]:
    """min/max picks (multi_choice) or items (list); ``available`` caps them when known."""
    low, high = f.integer("min", 0), f.integer("max", 1)
    if low is not None and high is not None and low > high:
        f.problem("min", f"{low} {noun} is more than max {high}; min must be <= max")
    if available:
        for key, count in (("min", low), ("max", high)):
            if count is not None and count > available:
                f.problem(
                    key,
                    f"{count} {noun} but there are only {available} options; "
                    f"use at most {available} or allow_other: true",
                )
    return low, high


def _read_labels(
    f: _Fields, step_type: StepType, scope: _Scope, low: float | None, high: float | None
) -> tuple[tuple[int, str], ...]:
    if step_type is not StepType.SCALE or "labels" not in f:
        return ()
    value = f.map["labels"]
    if not isinstance(value, _Map):
        f.problem("labels", f"must be a mapping like {{1: silent, 5: lively}}, got {_show(value)}")
        return ()
    out: dict[int, str] = {}
    for key, text in value.items():
        label = _read_label(f, value, key, text, scope, (low, high))
        if label is not None:
            out[label[0]] = label[1]
    return tuple(sorted(out.items()))


def _read_label(
    f: _Fields, labels: _Map, key: Any, text: Any, scope: _Scope, bounds: tuple[Any, Any]
) -> tuple[int, str] | None:
    line = labels.line_of(key)
    point = int(key) if isinstance(key, str) and key.isascii() and key.isdigit() else key
    if isinstance(point, bool) or not isinstance(point, int):
        f.problem("labels", f"key {_show(key)} is not a point of the scale; use numbers", line=line)
        return None
    if not bounds[0] <= point <= bounds[1]:
        f.problem("labels", f"{point} is outside the scale {bounds[0]}..{bounds[1]}", line=line)
    label = _scalar_text(text, labels.raw.get(key))
    if label is None or not label.strip():
        f.problem("labels", f"{point}: must be text, got {_show(text)}", line=line)
        return None
    _check_source(f, f"labels[{point}]", label, scope, line=line)
    return point, label


# --------------------------------------------------------------------------- save


def _parse_save(raw: str) -> SaveTarget | str:
    """A `save:` value as a target, or why it is not one."""
    parts = raw.split(".")
    if not all(_NAME.fullmatch(part) for part in parts):
        return f"'{raw}' is not a dotted name; use {_SAVE_HELP}"
    head, rest = parts[0], tuple(parts[1:])
    if head == "profile":
        return (
            SaveTarget(raw, SaveKind.PROFILE, rest)
            if rest
            else "profile needs a field: profile.<field>"
        )
    if head == "goal":
        return _parse_goal_save(raw, rest)
    if head == "checkin":
        return _parse_checkin_save(raw, rest)
    if head == "reflection":
        return (
            SaveTarget(raw, SaveKind.REFLECTION, rest)
            if len(rest) == 1
            else "use reflection.<field> (one field name)"
        )
    heads = ("profile", "goal", "checkin", "reflection")
    return f"'{raw}' is not a save target (use {_SAVE_HELP}){_did_you_mean(head, heads)}"


def _parse_goal_save(raw: str, rest: tuple[str, ...]) -> SaveTarget | str:
    if rest[:1] == ("new",):
        problem = _field_problem("goal", rest[1:], GOAL_FIELDS, "goal.new.<field>")
        return problem or SaveTarget(raw, SaveKind.GOAL_NEW, rest[1:])
    problem = _field_problem("goal", rest, GOAL_FIELDS, "goal.<field>")
    if problem:
        return problem
    kind = SaveKind.GOAL_ACTION_STEPS if rest == ("action_steps",) else SaveKind.GOAL
    return SaveTarget(raw, kind, rest)


def _parse_checkin_save(raw: str, rest: tuple[str, ...]) -> SaveTarget | str:
    if rest[:1] == ("goal",):
        fields = CHECKIN_GOAL_FIELDS
        problem = _field_problem("a check-in goal update", rest[1:], fields, "checkin.goal.<field>")
        return problem or SaveTarget(raw, SaveKind.CHECKIN_GOAL, rest[1:])
    problem = _field_problem("a check-in", rest, CHECKIN_FIELDS, "checkin.<field>")
    return problem or SaveTarget(raw, SaveKind.CHECKIN, rest)


def _field_problem(
    what: str, rest: tuple[str, ...], fields: frozenset[str], form: str
) -> str | None:
    if len(rest) != 1:
        return f"use {form} with one field: {_listing(fields)}"
    if rest[0] not in fields:
        hint = _did_you_mean(rest[0], fields)
        return f"{what} has no field '{rest[0]}' (fields: {_listing(fields)}){hint}"
    return None


def _read_save(
    f: _Fields,
    step_type: StepType,
    options: tuple[OptionSpec, ...],
    scope: _Scope,
    *,
    private: bool,
) -> SaveTarget | None:
    target = _save_target(f, scope)
    mode = _save_mode(f, target)
    if private and (target is None or target.kind is not SaveKind.PROFILE):
        f.problem("private", "only applies to a profile.<field> save; remove it or save to profile")
    if target is None:
        return None
    if target.field == "status" and target.kind in (SaveKind.GOAL, SaveKind.GOAL_NEW):
        _check_status_step(f, step_type, options)
    if target.kind is SaveKind.GOAL_NEW:
        f.ctx.goal_new_seen = True
    return SaveTarget(target.raw, target.kind, target.path, append=mode == "append")


def _save_target(f: _Fields, scope: _Scope) -> SaveTarget | None:
    raw = f.text("save")
    if raw is None:
        return None
    parsed = _parse_save(raw.strip())
    if isinstance(parsed, str):
        f.problem("save", parsed)
        return None
    if parsed.kind is SaveKind.CHECKIN_GOAL and not scope.in_loop:
        f.problem(
            "save",
            f"'{raw}' only works inside for_each: plan.active_goals; "
            "move the step into the loop or save to checkin.<field>",
        )
    if parsed.kind in (SaveKind.GOAL, SaveKind.GOAL_ACTION_STEPS) and not (
        scope.in_loop or f.ctx.goal_new_seen
    ):
        f.problem(
            "save",
            f"'{raw}' needs a current goal: put the step inside a for_each over "
            "goals or after a goal.new.<field> step",
        )
    return parsed


def _save_mode(f: _Fields, target: SaveTarget | None) -> str:
    mode = f.text("mode")
    if mode is None:
        return "replace"
    if mode not in ("replace", "append"):
        f.problem(
            "mode",
            f"'{mode}' is not a mode (use replace or append)"
            f"{_did_you_mean(mode, ('append', 'replace'))}",
        )
    elif "save" not in f:
        f.problem("mode", "has no effect without save:; remove it or add save: profile.<field>")
    elif mode == "append" and target is not None and target.kind is not SaveKind.PROFILE:
        f.problem("mode", f"append only works with profile.<field> targets, not '{target.raw}'")
    return mode


def _check_status_step(f: _Fields, step_type: StepType, options: tuple[OptionSpec, ...]) -> None:
    statuses = _listing(GOAL_STATUSES)
    if step_type is not StepType.CHOICE:
        f.problem(
            "save",
            f"a goal status comes from a choice step with options {statuses}, "
            f"not a {step_type} step",
        )
        return
    for option in options:
        if option.value not in GOAL_STATUSES:
            f.problem(
                "options",
                f"'{option.value}' is not a goal status (use {statuses})"
                f"{_did_you_mean(option.value, GOAL_STATUSES)}",
            )


# --------------------------------------------------------------------------- next rules


def _read_next(f: _Fields, scope: _Scope) -> tuple[NextRule, ...]:
    if "next" not in f:
        return ()
    value = f.map["next"]
    if isinstance(value, str):  # shorthand `next: end`
        goto = _read_target(f, "next")
        return (NextRule(goto or "", None, f.map.line_of("next")),)
    if not isinstance(value, _Seq) or not value:
        f.problem("next", f"must be a list of rules like '- goto: end', got {_show(value)}")
        return ()
    rules = [_read_rule(f, value, i, scope) for i in range(len(value))]
    _check_reachable(f, value, rules)
    return tuple(rule for rule in rules if rule is not None)


def _read_rule(f: _Fields, seq: _Seq, index: int, scope: _Scope) -> NextRule | None:
    item = seq[index]
    if not isinstance(item, _Map):
        f.problem(
            "next",
            f"rule {index + 1} must be a mapping with goto: (and when:), got {_show(item)}",
            line=seq.lines[index],
        )
        return None
    rule = _Fields(f.ctx, item, f.step_id)
    _check_keys(rule, _RULE_KEYS)
    goto = _read_goto(rule)
    if "goto" not in item:
        fix = f"next rule {index + 1} needs goto: <step id> or goto: end"
        _report_missing(rule, "goto", fix, _RULE_KEYS)
    when = rule.expression("when")
    if when is not None:
        key, line = f"next[{index + 1}].when", item.line_of("when")
        _check_source(f, key, when, scope, expression=True, answer_ok=True, line=line)
    return None if goto is None else NextRule(goto, when, item.line)


def _read_goto(rule: _Fields) -> str | None:
    goto = rule.text("goto")
    if goto is None or goto == END or goto in rule.ctx.ids:
        return goto
    hint = _did_you_mean(goto, rule.ctx.ids) or "; use a step id or end"
    rule.ctx.add(
        rule.map.line_of("goto"),
        rule.step_id,
        f"next: goto '{goto}' is not a step in this flow{hint}",
    )
    return goto


def _check_reachable(f: _Fields, seq: _Seq, rules: list[NextRule | None]) -> None:
    """A rule without `when` always matches, so rules after it are dead code."""
    for index, item in enumerate(seq[:-1]):
        if isinstance(item, _Map) and rules[index] is not None and "when" not in item:
            later = (
                f"rule {index + 2}" if index + 2 == len(seq) else f"rules {index + 2}-{len(seq)}"
            )
            f.problem(
                "next",
                f"rule {index + 1} has no when:, so it always matches and {later} "
                "can never be reached; give it a when: or move it last",
                line=seq.lines[index],
            )
            return


# --------------------------------------------------------------------------- flow


def _read_flow(ctx: _Ctx, top: _Map) -> Flow | None:
    f = _Fields(ctx, top, None)
    _check_keys(f, _FLOW_KEYS)
    for key, fix in _REQUIRED.items():
        if key not in f:
            _report_missing(f, key, fix, _FLOW_KEYS)
    _collect_ids(ctx, top.get("steps"))  # first, so templates may name any step
    flow_id = _flow_id(f)
    version = f.integer("version", 1)
    title = f.text("title")
    audience = _audience(f)
    intro = _read_template(f, "intro", _Scope())
    outro = _read_template(f, "outro", _Scope())
    description = f.text("description")
    settings = _settings(ctx, top)
    steps = _read_steps(ctx, f, _Scope())
    if ctx.problems or flow_id is None or version is None or title is None:
        return None
    return Flow(
        id=flow_id,
        version=version,
        title=title,
        audience=audience,
        steps=steps,
        intro=intro,
        outro=outro,
        description=description,
        settings=settings,
    )


def _flow_id(f: _Fields) -> str | None:
    value = f.text("id")
    if value is not None and not _FLOW_ID.fullmatch(value):
        f.problem(
            "id",
            f"{_show(value)} is not snake_case (lowercase letters, digits and _, "
            f"starting with a letter); e.g. '{_slug(value)}'",
        )
        return None
    return value


def _audience(f: _Fields) -> Audience:
    value = f.text("audience")
    names = [a.value for a in Audience]
    if value is None:
        return Audience.STUDENT
    if value not in names:
        f.problem(
            "audience",
            f"'{value}' is not an audience (use {', '.join(names)}){_did_you_mean(value, names)}",
        )
        return Audience.STUDENT
    return Audience(value)


def _settings(ctx: _Ctx, top: _Map) -> FlowSettings:
    if "settings" not in top:
        return FlowSettings()
    value = top["settings"]
    if not isinstance(value, _Map):
        ctx.add(top.line_of("settings"), None, f"settings: must be a mapping, got {_show(value)}")
        return FlowSettings()
    f = _Fields(ctx, value, None)
    _check_keys(f, _SETTINGS_KEYS)
    reminders = f.integer("max_reminders", 0)
    retries = f.integer("max_retries", 1)
    remind_after = _duration(f, "remind_after")
    if reminders is None:  # asking for reminders without a count means one reminder
        reminders = 0 if remind_after is None else 1
    return FlowSettings(
        remind_after_s=remind_after,
        max_reminders=reminders,
        expire_after_s=_duration(f, "expire_after"),
        max_retries=3 if retries is None else retries,
        anonymous=f.flag("anonymous"),
    )


def _duration(f: _Fields, key: str) -> int | None:
    if key not in f:
        return None
    text = _scalar_text(f.map[key], f.map.raw.get(key))
    if text is None:
        f.problem(key, f"must be a duration like 30m, 12h, 1d or 1w, got {_show(f.map[key])}")
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        f.problem(key, str(exc))
        return None


# --------------------------------------------------------------------------- text -> YAML


def _parse_yaml(ctx: _Ctx, text: str) -> tuple[_Map | None, list[_Duplicate]]:
    """The top mapping (None when unusable) and the duplicate keys PyYAML would have hidden."""
    try:
        data, duplicates = _load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        ctx.add(*_yaml_problem(exc, text))
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        ctx.add(line, None, f"the file contains a character YAML cannot read ({char}); remove it")
    except RecursionError:
        ctx.add(None, None, "not valid YAML: nested too deeply to read; flatten the file")
    except Exception as exc:  # PyYAML constructors raise ValueError & co. on odd scalars
        ctx.add(
            None,
            None,
            f"not valid YAML: a value cannot be read ({exc}); if it is a "
            "date or number meant as text, put it in quotes",
        )
    else:
        return _top_mapping(ctx, data), duplicates
    return None, []


def _load_yaml(text: str) -> tuple[Any, list[_Duplicate]]:
    if _FAST_LOADER is not None and _libyaml_reads_alike(text):
        with contextlib.suppress(Exception):  # the pure parser says what is wrong, as before
            return _load_with(_FAST_LOADER, text)
    return _load_with(_LineLoader, text)


def _libyaml_reads_alike(text: str) -> bool:
    """Whether libyaml may read ``text``: not when it holds a tab or a byte order mark past
    its start, which libyaml takes where PyYAML refuses them; such a file is read by PyYAML
    alone, as before. (libyaml also takes a `? ` inside a ``[...]`` or ``{...}`` that
    PyYAML refused; that rare case it reads as YAML allows.)"""
    return "\t" not in text and "\ufeff" not in text[1:]


def _load_with(kind: type[_Loader], text: str) -> tuple[Any, list[_Duplicate]]:
    loader = kind(text)  # SafeLoader underneath: no Python objects, ever
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> tuple[int | None, None, str]:
    mark = exc.problem_mark or exc.context_mark
    line = None if mark is None else mark.line + 1
    message = f"not valid YAML: {exc.problem or exc.context or 'syntax error'}"
    if exc.context and exc.problem:
        started = exc.context_mark
        since = (
            "" if started is None or started.line + 1 == line else f" at line {started.line + 1}"
        )
        message += f" ({exc.context}{since})"
    lines = text.splitlines()
    if line is not None and 0 < line <= len(lines) and "\t" in lines[line - 1]:
        message += "; YAML does not allow tabs for indentation, use spaces"
    return line, None, message


def _report_duplicates(ctx: _Ctx, duplicates: list[_Duplicate]) -> None:
    """Run after the ids are known, so each duplicate names the step it sits in."""
    for dup in duplicates:
        name = dup.key if isinstance(dup.key, str) else _show(dup.key)
        ctx.add(
            dup.line,
            _owning_step_id(ctx, dup.mapping),
            f"{name}: the key appears twice in this mapping (first on line "
            f"{dup.first_line}); YAML would keep only the last one, so remove one",
        )


def _owning_step_id(ctx: _Ctx, mapping: _Map) -> str | None:
    node: _Map | _Seq | None = mapping
    for _ in range(1000):  # aliases can make parent links circular
        if node is None:
            break
        if id(node) in ctx.step_maps:
            return ctx.step_maps[id(node)]
        node = node.parent
    return None


def _top_mapping(ctx: _Ctx, data: Any) -> _Map | None:
    if data is None:
        ctx.add(1, None, "the file is empty; a flow needs id, version, title and steps")
        return None
    if not isinstance(data, _Map):
        ctx.add(
            1,
            None,
            f"the file must be a mapping with id:, version:, title: and steps:, not {_show(data)}",
        )
        return None
    return data


# --------------------------------------------------------------------------- public API


def parse_duration(text: str) -> int:
    """Seconds in "30m", "12h", "1d" or "1w": authors write waits the way people say them."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{_show(text)} is not a duration; use a number and a unit: 30m, 12h, 1d or 1w"
        )
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise ValueError(f"{_show(text)} is no time at all; use at least 1m")
    return seconds


def load_flow_text(text: str, *, filename: str = "<string>") -> Flow:
    """Parse and validate one flow; raises `FlowLoadError` listing every problem found."""
    ctx = _Ctx(filename)
    top, duplicates = _parse_yaml(ctx, text)
    flow = _read_flow(ctx, top) if top is not None else None
    _report_duplicates(ctx, duplicates)
    if flow is None or ctx.problems:
        if not ctx.problems:  # defensive: never refuse without saying why
            ctx.add(None, None, "the flow could not be read")
        raise FlowLoadError(sorted(ctx.problems, key=lambda p: p.line or 0))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return replace(flow, source=text, content_hash=digest)


def load_flow_file(path: str | os.PathLike[str]) -> Flow:
    """Read a UTF-8 flow file and load it; `Flow.path` remembers where it came from."""
    name = os.fspath(path)
    text = _read_text(name)
    return replace(load_flow_text(text, filename=name), path=name)


def _read_text(name: str) -> str:
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        problem = FlowProblem(name, None, None, f"cannot read the file: {reason}")
        raise FlowLoadError([problem]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"the file is not UTF-8 text (byte {exc.start}, line {line}); save it as UTF-8"
        raise FlowLoadError([FlowProblem(name, line, None, message)]) from None


def check_flow_files(paths: Iterable[str | os.PathLike[str]]) -> list[FlowProblem]:
    """Every problem across the given files, including a flow id used by two files."""
    return load_flow_files(paths)[1]


def load_flow_files(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[Flow], list[FlowProblem]]:
    """The flows that load, and every problem across the files (as `check_flow_files`):
    each file is read and parsed once, whether it is then used or only checked."""
    flows: list[Flow] = []
    problems: list[FlowProblem] = []
    owners: dict[str, Flow] = {}
    for path in paths:
        try:
            flow = load_flow_file(path)
        except FlowLoadError as exc:
            problems.extend(exc.problems)
            continue
        flows.append(flow)
        first = owners.setdefault(flow.id, flow)
        if first is not flow:
            problems.append(
                FlowProblem(
                    flow.path or "",
                    _id_line(flow.source),
                    None,
                    f"id: flow id '{flow.id}' is also used by {first.path}; "
                    "flow ids must be unique, rename one",
                )
            )
    return flows, problems


def _id_line(source: str) -> int | None:
    match = re.search(r"^id\s*:", source, re.MULTILINE)
    return None if match is None else source.count("\n", 0, match.start()) + 1
