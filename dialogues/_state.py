"""A conversation's state: a small JSON-able value that lives in the database, not in memory.

Two parts of it grow with the conversation: its answers and its `/back` history. The state
keeps only the most recent of them itself (at most `RECENT_MAX` of each); older ones go to
an archive that storage keeps (rows), and are fetched from it only when a turn uses them:
an answer a template reads, the question `/back` returns to. So a turn reads and writes
about as much at the 400th question as at the 4th. A state that has never been archived
(every short conversation, and any built in memory) holds everything itself.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "RECENT_MAX",
    "START",
    "Answers",
    "Archive",
    "ConversationState",
    "ConversationStatus",
    "Frame",
    "History",
    "LoopState",
    "StateChanges",
]

RECENT_MAX = 16
"""Answers (and history frames) a state keeps itself; past that, the oldest are archived."""
_RECENT_KEPT = RECENT_MAX // 2  # what archiving leaves: an archive write every few turns

START = "__start__"
"""The step of a conversation that has not begun: resuming it begins it (intro, first
question). A conversation started for someone who cannot be messaged yet waits there."""


class ConversationStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"  # the student said /stop: no messages until they write again
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (
            ConversationStatus.ACTIVE,
            ConversationStatus.PAUSED,
            ConversationStatus.STOPPED,
        )


@dataclass(slots=True)
class LoopState:
    items: list[dict[str, Any]]
    index: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "index": self.index}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoopState:
        return cls(items=list(data["items"]), index=int(data["index"]))


@dataclass(frozen=True, slots=True)
class Frame:
    """A question the student was asked, kept so `/back` can return to it exactly."""

    step_id: str
    iteration: int | None
    goal_key: str | None

    def to_json(self) -> list[Any]:
        return [self.step_id, self.iteration, self.goal_key]

    @classmethod
    def from_json(cls, data: list[Any]) -> Frame:
        return cls(str(data[0]), data[1], data[2])


class Archive(Protocol):
    """Where storage keeps a conversation's older answers and history frames."""

    def answer(self, step_id: str) -> Any:
        """One archived answer; KeyError when there is none."""

    def answers(self) -> Mapping[str, Any]:
        """Every archived answer."""

    def frames(self, start: int, stop: int) -> list[Frame]:
        """The archived frames at positions ``start`` to ``stop - 1``, in order."""


class Answers(MutableMapping[str, Any]):
    """A conversation's answers by step id (what `answers.<id>` reads in templates).

    The recent ones are held here; an archived one is fetched on first use, and iterating
    or counting fetches them all. Only the mapping's methods are public: templates read
    answers as attributes, so any other public name would hide the answer of a step of that
    id. `ConversationState.changes()`, in this module, reads what a turn changed.
    """

    __slots__ = (
        "_archive",
        "_archived",
        "_complete",
        "_dropped",
        "_fetched",
        "_pristine",
        "_recent",
        "_removed",
        "_replaces",
    )
    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        recent: Mapping[str, Any] | None = None,
        *,
        archive: Archive | None = None,
        archived: bool = False,
    ) -> None:
        """``archive`` is the conversation's archive, and ``archived`` whether it holds
        answers. Without one, these answers replace whatever was archived when saved."""
        self._recent: dict[str, Any] = dict(recent or {})  # oldest first
        self._archive = archive
        self._replaces = archive is None
        self._archived = archived  # the archive may hold answers of this conversation
        self._complete = not archived  # every answer is in _recent or _fetched
        self._dropped = False  # cleared: the archived answers go too
        self._fetched: dict[str, Any] = {}  # archived answers read; _ABSENT for none
        self._pristine: dict[str, Any] = {}  # archived lists and dicts, as fetched
        self._removed: set[str] = set()  # taken away: an archived copy goes too

    def __getitem__(self, step_id: str) -> Any:
        try:
            return self._recent[step_id]
        except KeyError:
            pass
        if step_id not in self._fetched and not self._complete:
            self._note_fetched(step_id, self._fetch(step_id))
        value = self._fetched.get(step_id, _ABSENT)
        if value is _ABSENT:
            raise KeyError(step_id)
        return value

    def __setitem__(self, step_id: str, value: Any) -> None:
        self._recent.pop(step_id, None)  # the newest answer goes last, to be archived last
        self._recent[step_id] = value
        self._removed.discard(step_id)

    def __delitem__(self, step_id: str) -> None:
        if step_id not in self:
            raise KeyError(step_id)
        self._recent.pop(step_id, None)
        self._fetched[step_id] = _ABSENT
        self._pristine.pop(step_id, None)
        if self._archived:
            self._removed.add(step_id)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._everything()))

    def __len__(self) -> int:
        return len(self._everything())

    def __repr__(self) -> str:
        return f"Answers({self._recent!r}{'' if self._complete else ', archived ...'})"

    def clear(self) -> None:
        """Forget every answer, archived ones too, without fetching them."""
        self._recent.clear()
        self._fetched.clear()
        self._pristine.clear()
        self._removed.clear()
        self._complete = self._dropped = True
        self._archived = False

    def _fetch(self, step_id: str) -> Any:
        if self._archive is None:
            raise LookupError("these answers are archived, but where?")
        try:
            return self._archive.answer(step_id)
        except KeyError:
            return _ABSENT

    def _note_fetched(self, step_id: str, value: Any) -> None:
        self._fetched[step_id] = value
        if isinstance(value, list | dict):  # could be changed in place: keep it as fetched
            self._pristine[step_id] = copy.deepcopy(value)

    def _everything(self) -> dict[str, Any]:
        if not self._complete:
            if self._archive is None:
                raise LookupError("these answers are archived, but where?")
            for step_id, value in self._archive.answers().items():
                if step_id not in self._fetched:
                    self._note_fetched(step_id, value)
            self._complete = True
        archived = {k: v for k, v in self._fetched.items() if v is not _ABSENT}
        return {k: v for k, v in archived.items() if k not in self._recent} | self._recent

    def _changed_in_place(self) -> dict[str, Any]:
        """Archived answers read and then changed in place (a list appended to...)."""
        if not self._pristine:
            return {}
        return {
            step_id: self._fetched[step_id]
            for step_id, before in self._pristine.items()
            if step_id not in self._recent and self._fetched[step_id] != before
        }

    def _saved(self, recent: Mapping[str, Any], archived: Mapping[str, Any]) -> None:
        self._recent = dict(recent)
        if self._fetched:
            for step_id in recent:
                self._fetched.pop(step_id, None)
                self._pristine.pop(step_id, None)
        for step_id, value in archived.items():
            self._note_fetched(step_id, value)
        self._archived = self._archived or bool(archived)
        self._removed.clear()
        self._replaces = self._dropped = False


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


class History:
    """The questions asked so far, oldest first, kept so `/back` can return to each exactly.

    A stack: the recent frames are held here, the first ``archived`` ones in ``archive``,
    fetched when `/back` reaches them. Without an archive, these frames replace whatever
    was archived when saved.
    """

    __slots__ = ("_archive", "_archived", "_fetched", "_kept", "_recent", "_replaces")
    __hash__ = None  # type: ignore[assignment]

    _FETCH = 4  # archived frames fetched at once: `/back` often goes back again

    def __init__(
        self, recent: Iterable[Frame] = (), *, archive: Archive | None = None, archived: int = 0
    ) -> None:
        self._recent = list(recent)  # the frames above the archived ones
        self._archive = archive
        self._replaces = archive is None
        self._archived = archived  # frames [0, archived) are in the archive
        self._kept = archived  # of those, how many are still part of the history
        self._fetched: dict[int, Frame] = {}  # archived frames read, by position

    def __len__(self) -> int:
        return self._kept + len(self._recent)

    def __iter__(self) -> Iterator[Frame]:
        if self._kept:
            self._fetch(0, self._kept)
        yield from (self._fetched[position] for position in range(self._kept))
        yield from self._recent

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"History(<{self._kept} archived>, {self._recent!r})"

    @property
    def top(self) -> Frame:
        """The question asked last (IndexError before the first)."""
        if self._recent:
            return self._recent[-1]
        if not self._kept:
            raise IndexError("empty history")
        return self._frame(self._kept - 1)

    def push(self, frame: Frame) -> None:
        self._recent.append(frame)

    def pop(self) -> Frame:
        if self._recent:
            return self._recent.pop()
        frame = self.top
        self._kept -= 1
        return frame

    def clear(self) -> None:
        self._recent.clear()
        self._kept = 0

    def _frame(self, position: int) -> Frame:
        if position not in self._fetched:
            self._fetch(max(0, position - self._FETCH + 1), position + 1)
        return self._fetched[position]

    def _fetch(self, start: int, stop: int) -> None:
        missing = [p for p in range(start, stop) if p not in self._fetched]
        if not missing:
            return
        if self._archive is None:
            raise LookupError("these frames are archived, but where?")
        first = missing[0]
        for offset, frame in enumerate(self._archive.frames(first, missing[-1] + 1)):
            self._fetched[first + offset] = frame

    def _saved(self, archived: Sequence[Frame], recent: Sequence[Frame]) -> None:
        for offset, frame in enumerate(archived):
            self._fetched[self._kept + offset] = frame
        self._kept = self._archived = self._kept + len(archived)
        self._recent = list(recent)
        if self._fetched:
            for position in [p for p in self._fetched if p >= self._kept]:
                del self._fetched[position]
        self._replaces = False


@dataclass(frozen=True, slots=True)
class StateChanges:
    """What saving a state writes (see `ConversationState.changes()`).

    ``head`` is the state's own JSON. Its archive: drop every archived answer
    (``drop_answers``), or those in ``removed``; write ``archive_answers``; drop the
    archived frames from position ``drop_frames_from`` on (None: none); write
    ``archive_frames`` from position ``first_frame`` on.
    """

    head: dict[str, Any]
    drop_answers: bool
    removed: frozenset[str]
    archive_answers: Mapping[str, Any]
    drop_frames_from: int | None
    first_frame: int
    archive_frames: tuple[Frame, ...]


@dataclass(slots=True)
class ConversationState:
    """Where a conversation stands. ``step`` is the question waiting for an answer.

    ``answers`` and ``history`` may be given as a plain dict and list: they are wrapped.
    """

    step: str
    status: ConversationStatus = ConversationStatus.ACTIVE
    answers: Answers = field(default_factory=Answers)
    history: History = field(default_factory=History)
    retries: int = 0
    loops: dict[str, LoopState] = field(default_factory=dict)
    goal_key: str | None = None  # the goal `goal.<field>` fills outside loops
    pending: list[str] = field(default_factory=list)  # list items collected so far
    revisiting: bool = False  # reached by /back: the waiting question has an answer already

    def __post_init__(self) -> None:
        if not isinstance(self.answers, Answers):
            self.answers = Answers(self.answers)
        if not isinstance(self.history, History):
            self.history = History(self.history)

    @property
    def finished(self) -> bool:
        return not self.status.is_open

    def to_json(self) -> dict[str, Any]:
        """The whole state as JSON, archived answers and frames included (fetched)."""
        return self._json(dict(self.answers), list(self.history))

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], *, archive: Archive | None = None
    ) -> ConversationState:
        """From `to_json()`, or from a saved head (`changes()`) and the conversation's
        archive."""
        archived_frames = int(data.get("archived_frames", 0))
        archived_answers = bool(data.get("archived_answers", False))
        if archive is None and (archived_frames or archived_answers):
            raise ValueError("part of this state is archived: give its archive")
        return cls(
            step=str(data["step"]),
            status=ConversationStatus(data.get("status", "active")),
            answers=Answers(data.get("answers"), archive=archive, archived=archived_answers),
            history=History(
                [Frame.from_json(f) for f in data.get("history", ())],
                archive=archive,
                archived=archived_frames,
            ),
            retries=int(data.get("retries", 0)),
            loops={k: LoopState.from_json(v) for k, v in data.get("loops", {}).items()},
            goal_key=data.get("goal_key"),
            pending=list(data.get("pending", [])),
            revisiting=bool(data.get("revisiting", False)),
        )

    def changes(self) -> StateChanges:
        """What saving this state writes: its own JSON, and what goes to (or leaves) its
        archive. Answers and frames past `RECENT_MAX` are archived, the oldest first."""
        answers, history = self.answers, self.history
        recent = {**answers._recent, **answers._changed_in_place()}  # a copy: the head's own
        to_archive: dict[str, Any] = {}
        if len(recent) > RECENT_MAX:
            oldest = list(recent)[: len(recent) - _RECENT_KEPT]
            to_archive = {step_id: recent.pop(step_id) for step_id in oldest}
        drop_answers = answers._replaces or answers._dropped

        frames = history._recent
        out = len(frames) - _RECENT_KEPT if len(frames) > RECENT_MAX else 0
        kept = history._kept
        if history._replaces:
            drop_from: int | None = 0
        else:
            drop_from = kept if kept < history._archived else None
        head = self._json(recent, frames[out:])
        if kept + out:
            head["archived_frames"] = kept + out
        if answers._archived or to_archive:
            head["archived_answers"] = True
        return StateChanges(
            head=head,
            drop_answers=drop_answers,
            removed=frozenset() if drop_answers else frozenset(answers._removed),
            archive_answers=to_archive,
            drop_frames_from=drop_from,
            first_frame=kept,
            archive_frames=tuple(frames[:out]),
        )

    def mark_saved(self, changes: StateChanges) -> None:
        """Storage wrote ``changes``: what changes next counts from here."""
        self.answers._saved(changes.head["answers"], changes.archive_answers)
        history = self.history
        history._saved(changes.archive_frames, history._recent[len(changes.archive_frames) :])

    def _json(self, answers: Mapping[str, Any], frames: Iterable[Frame]) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status.value,
            "answers": answers,
            "history": [f.to_json() for f in frames],
            "retries": self.retries,
            "loops": {k: v.to_json() for k, v in self.loops.items()},
            "goal_key": self.goal_key,
            "pending": self.pending,
            "revisiting": self.revisiting,
        }
