"""Sandboxed Jinja2 templates and expressions, compiled once per flow.

Templates (`ask`, `say`, `intro`, `outro`, labels) render to plain text; when rendering fails
the literal source is shown, as the format promises. Expressions (`when`) that fail at run
time count as false. Both run in Jinja2's sandbox: no Python internals, files or network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "Expression",
    "LazyMapping",
    "Template",
    "TemplateSyntaxError",
    "compile_expression",
    "compile_template",
    "names_used",
    "parse",
]

log = logging.getLogger("profilebot.dialogues")

_MAX_EXPONENT = 64
_MAX_BASE = 10**18
_MAX_REPEAT = 10_000


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus bounds on `**` and `*`, so no template can stall a turn."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _too_big_power(left, right):
            raise SecurityError("power too large")
        if operator == "*" and (_too_long(left, right) or _too_long(right, left)):
            raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


def _too_big_power(base: Any, exponent: Any) -> bool:
    if not (isinstance(base, int | float) and isinstance(exponent, int | float)):
        return False
    return abs(exponent) > _MAX_EXPONENT or (abs(base) > _MAX_BASE and abs(exponent) > 1)


def _too_long(sequence: Any, times: Any) -> bool:
    return (
        isinstance(sequence, str | list | tuple)
        and isinstance(times, int)
        and len(sequence) * times > _MAX_REPEAT
    )


_ENV = _BoundedSandbox(
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)


class LazyMapping(Mapping[str, Any]):
    """A mapping filled on first use, so a turn loads the profile or plan only if asked."""

    __slots__ = ("_data", "_loader")

    def __init__(self, loader: Callable[[], Mapping[str, Any]]) -> None:
        self._loader = loader
        self._data: Mapping[str, Any] | None = None

    def _resolved(self) -> Mapping[str, Any]:
        if self._data is None:
            self._data = self._loader()
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._resolved()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolved())

    def __len__(self) -> int:
        return len(self._resolved())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._resolved()[name]
        except KeyError:
            raise AttributeError(name) from None


class Template:
    """A compiled template; ``render`` never raises."""

    __slots__ = ("_compiled", "_static", "source")

    def __init__(self, source: str, ast: nodes.Template | None = None) -> None:
        self.source = source
        self._static = "{" not in source
        self._compiled = None if self._static else _ENV.from_string(ast or source)

    def render(self, scope: Mapping[str, Any]) -> str:
        if self._compiled is None:
            return self.source
        try:
            return self._compiled.render(scope)
        except Exception as exc:  # a template that fails renders its literal text
            log.warning("template failed, showing its source: %s", type(exc).__name__)
            log.debug("template %r failed: %s", self.source, exc)
            return self.source


class Expression:
    """A compiled `when` expression; ``evaluate`` never raises."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._compiled = _ENV.compile_expression(source, undefined_to_none=False)

    def evaluate(self, scope: Mapping[str, Any]) -> bool:
        try:
            return bool(self._compiled(**scope))
        except Exception as exc:  # a failing expression counts as false
            log.info("expression %r counted as false: %s", self.source, type(exc).__name__)
            return False

    def value(self, scope: Mapping[str, Any]) -> Any:
        """The expression's value (for `for_each` sources); None when it fails."""
        try:
            result = self._compiled(**scope)
        except Exception as exc:
            log.info("expression %r failed: %s", self.source, type(exc).__name__)
            return None
        return None if isinstance(result, StrictUndefined) else result


# Compiled once per source text and process: loading a flow checks that its templates
# compile, and its engine then uses the very same ones. Both are immutable once built.
_templates: dict[str, Template] = {}
_expressions: dict[str, Expression] = {}


def compile_template(source: str, ast: nodes.Template | None = None) -> Template:
    """Compile a template (from ``ast``, its `parse`, when given); raises
    `TemplateSyntaxError` when it does not parse."""
    template = _templates.get(source)
    if template is None:
        template = _templates.setdefault(source, Template(source, ast))
    return template


def compile_expression(source: str) -> Expression:
    """Compile an expression; raises `TemplateSyntaxError` when it does not parse."""
    expression = _expressions.get(source)
    if expression is None:
        expression = _expressions.setdefault(source, Expression(source))
    return expression


def parse(source: str, *, expression: bool = False) -> nodes.Template:
    """The syntax tree of a template or expression (for load-time checks; a template's tree
    can then be compiled, once read: compiling may rewrite it)."""
    return _ENV.parse("{{ (" + source + ") }}" if expression else source)


def names_used(ast: nodes.Template) -> set[str]:
    """Top-level names a parsed template or expression reads."""
    return set(meta.find_undeclared_variables(ast))
