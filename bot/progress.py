"""How far a long fan-out has got (a survey sent to a grade, a roster imported, run-due).

On a terminal, a rich progress bar on stderr, gone when the work ends; in a pipe or a log,
nothing: scripts read the command's output, not its animation. The work itself only calls
``advance`` (services take it as a plain callable), so it never knows whether anyone watches.
``summary`` prints the one line that ends such a command.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, Self, TextIO

__all__ = ["Progress", "summary"]


class Progress:
    """A progress bar on ``stream`` (stderr) when it is a terminal, else a no-op.

    Use as ``with Progress("Starting survey", total=n) as bar: ... bar.advance()``; ``total``
    None when it is not known yet (``update`` can set it later).
    """

    def __init__(
        self, description: str, total: int | None = None, *, stream: TextIO | None = None
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._description = description
        self._total = total
        self._bar: Any = None  # rich's Progress, imported only when someone watches
        self._task: Any = None

    @property
    def shown(self) -> bool:
        """Whether a bar is on screen (the stream is a terminal)."""
        return self._bar is not None

    def __enter__(self) -> Self:
        if _is_terminal(self._stream):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            console = Console(file=self._stream, force_terminal=True)
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._description, total=self._total)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def advance(self, steps: int = 1) -> None:
        """``steps`` more units of the work done."""
        if self._bar is not None:
            self._bar.advance(self._task, steps)

    def completed(self, done: int) -> None:
        """``done`` units of the work done in all (for work that counts its own progress)."""
        if self._bar is not None:
            self._bar.update(self._task, completed=done)

    def update(self, *, description: str | None = None, total: int | None = None) -> None:
        """A new stage of the work (``description``), or its size once known (``total``)."""
        if self._bar is not None:
            self._bar.update(self._task, description=description, total=total)


def summary(
    line: str, *, as_json: bool, out: TextIO | None = None, err: TextIO | None = None
) -> None:
    """The one line that ends a fan-out command.

    It is the command's output (stdout); with ``--json``, where stdout holds the JSON
    document alone, it goes to stderr, and only when a person is watching there.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if not as_json:
        print(line, file=out)
    elif _is_terminal(err):
        print(line, file=err)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
