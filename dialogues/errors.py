"""Every error profilebot raises on purpose.

One root, small subclasses that say what went wrong::

    ProfilebotError
    ├── FlowError                 a flow file cannot be used (raised at load time)
    │   └── FlowLoadError         carries every FlowProblem found in one or more files
    ├── UnknownFlowError          no flow with that id or content hash is known
    ├── StorageError              (storage) the database cannot do what was asked
    │   ├── DatabaseUnavailable   the DATABASE_URL cannot be reached or opened
    │   └── UnknownPersonError    no person with that handle
    └── ConfigError               (bot) a setting is missing or malformed

`storage` and `bot` subclass this root; `dialogues` is the core, so the root lives here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FlowError",
    "FlowLoadError",
    "FlowProblem",
    "ProfilebotError",
    "UnknownFlowError",
]


class ProfilebotError(Exception):
    """Root of every error profilebot raises on purpose."""


class FlowError(ProfilebotError):
    """A flow cannot be used."""


@dataclass(frozen=True, slots=True)
class FlowProblem:
    """One thing wrong in a flow file, located as precisely as the file allows."""

    file: str
    line: int | None
    step_id: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        step = f" step '{self.step_id}':" if self.step_id else ""
        return f"{where}:{step} {self.message}"


class FlowLoadError(FlowError):
    """One or more flow files were refused; `problems` lists every reason."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownFlowError(FlowError, LookupError):
    """No flow with that id (or content hash) is loaded."""
