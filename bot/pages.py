"""The HTML pages profilebot writes from ``bot/templates/`` (a student's card, an export).

One Jinja2 environment for them, autoescaping everything: whatever a student typed is shown
as text, never run. A variable a template names and the page does not give is an error, not
an empty gap. Jinja2 is imported on first use (a command that writes no page never loads it).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2

__all__ = ["page_template"]


def page_template(name: str) -> jinja2.Template:
    """The template ``name`` of ``bot/templates/``."""
    return _environment().get_template(name)


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("bot", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
