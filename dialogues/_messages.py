"""The neutral message model every adapter translates to and from."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "REPLACEMENT_CHARACTER",
    "Attachment",
    "Command",
    "Inbound",
    "InboundKind",
    "Option",
    "Reply",
    "ReplyKind",
    "Scale",
    "clean_text",
]

REPLACEMENT_CHARACTER: Final = "\ufffd"
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` as Unicode every database stores: lone surrogates become U+FFFD, NULs go.

    A platform's JSON may carry ``"\\udc91"`` (valid JSON, not valid Unicode) and a terminal
    pipe any bytes; neither SQLite's UTF-8 nor PostgreSQL's text takes them (nor, in
    PostgreSQL, a NUL). Cleaning them where a message enters keeps one odd character from
    failing a student's turn every time it is tried.
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii():
        return text
    return _LONE_SURROGATE.sub(REPLACEMENT_CHARACTER, text)


def _clean_fields(value: Any) -> None:
    """Clean every text field of a frozen dataclass in place, as it is built."""
    for spec in fields(value):
        current = getattr(value, spec.name)
        if isinstance(current, str):
            object.__setattr__(value, spec.name, clean_text(current))
        elif isinstance(current, tuple) and any(isinstance(v, str) for v in current):
            cleaned = tuple(clean_text(v) if isinstance(v, str) else v for v in current)
            object.__setattr__(value, spec.name, cleaned)


class InboundKind(StrEnum):
    TEXT = "text"
    BUTTON = "button"
    COMMAND = "command"
    FILE = "file"


class Command(StrEnum):
    """The global commands every flow understands."""

    BACK = "back"
    SKIP = "skip"
    PAUSE = "pause"
    RESTART = "restart"
    HELP = "help"
    STOP = "stop"
    DONE = "done"  # finishes a list or multi-select answer


@dataclass(frozen=True, slots=True)
class Attachment:
    """A photo, document or link the student shared (stored as an artifact)."""

    kind: str  # "photo" | "document" | "link"
    file_id: str | None = None
    name: str | None = None
    mime_type: str | None = None
    url: str | None = None
    caption: str | None = None

    def __post_init__(self) -> None:
        _clean_fields(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file_id": self.file_id,
            "name": self.name,
            "mime_type": self.mime_type,
            "url": self.url,
            "caption": self.caption,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attachment:
        return cls(
            kind=str(data.get("kind", "document")),
            file_id=data.get("file_id"),
            name=data.get("name"),
            mime_type=data.get("mime_type"),
            url=data.get("url"),
            caption=data.get("caption"),
        )


@dataclass(frozen=True, slots=True)
class Inbound:
    """What a person sent, already stripped of its platform.

    - TEXT: typed text (commands typed as ``/back`` are recognised by the engine too).
    - BUTTON: a button press; ``value`` is the option value ("yes"/"no" for yes_no, the
      number for a scale), ``values`` the final selection of a multi-select.
    - COMMAND: a platform-parsed command; ``command`` is its name without the slash.
    - FILE: a shared photo/document/link in ``attachment``.
    """

    kind: InboundKind
    text: str = ""
    value: str | None = None
    values: tuple[str, ...] | None = None
    command: str | None = None
    attachment: Attachment | None = None

    def __post_init__(self) -> None:
        _clean_fields(self)

    def to_json(self) -> dict[str, Any]:
        """As stored for a message set aside after failing (see ``from_json``)."""
        return {
            "kind": self.kind.value,
            "text": self.text,
            "value": self.value,
            "values": None if self.values is None else list(self.values),
            "command": self.command,
            "attachment": None if self.attachment is None else self.attachment.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inbound:
        values = data.get("values")
        attachment = data.get("attachment")
        return cls(
            kind=InboundKind(data["kind"]),
            text=str(data.get("text", "")),
            value=data.get("value"),
            values=None if values is None else tuple(str(v) for v in values),
            command=data.get("command"),
            attachment=None if attachment is None else Attachment.from_json(attachment),
        )

    @classmethod
    def of_text(cls, text: str) -> Inbound:
        return cls(InboundKind.TEXT, text=text)

    @classmethod
    def of_button(cls, value: str) -> Inbound:
        return cls(InboundKind.BUTTON, value=value)

    @classmethod
    def of_selection(cls, values: tuple[str, ...]) -> Inbound:
        return cls(InboundKind.BUTTON, values=tuple(values))

    @classmethod
    def of_command(cls, command: str, text: str = "") -> Inbound:
        return cls(InboundKind.COMMAND, command=command, text=text)

    @classmethod
    def of_file(cls, attachment: Attachment) -> Inbound:
        return cls(InboundKind.FILE, attachment=attachment, text=attachment.caption or "")


@dataclass(frozen=True, slots=True)
class Option:
    """One choice as the student sees it (label already rendered)."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class Scale:
    min: int
    max: int
    labels: tuple[tuple[int, str], ...] = ()


class ReplyKind(StrEnum):
    TEXT = "text"  # plain message, or a question answered by typing
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    SCALE = "scale"
    YES_NO = "yes_no"
    LIST = "list"  # typed items, with a "done" affordance
    FILE = "file"  # asks for a photo/document/link


@dataclass(frozen=True, slots=True)
class Reply:
    """One outbound message in neutral form; adapters pick the best widget.

    ``text`` is plain text: adapters escape it for their markup. ``step_id`` is set when
    the reply asks a question, so an adapter can later replace its buttons with the answer.
    """

    text: str
    kind: ReplyKind = ReplyKind.TEXT
    step_id: str | None = None
    options: tuple[Option, ...] = ()
    scale: Scale | None = None
    min_picks: int | None = None
    max_picks: int | None = None
    allow_other: bool = False
    optional: bool = False

    @property
    def is_question(self) -> bool:
        return self.step_id is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "kind": self.kind.value,
            "step_id": self.step_id,
            "options": [[o.value, o.label] for o in self.options],
            "scale": None
            if self.scale is None
            else [self.scale.min, self.scale.max, [list(x) for x in self.scale.labels]],
            "min_picks": self.min_picks,
            "max_picks": self.max_picks,
            "allow_other": self.allow_other,
            "optional": self.optional,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        scale = data.get("scale")
        return cls(
            text=data["text"],
            kind=ReplyKind(data.get("kind", "text")),
            step_id=data.get("step_id"),
            options=tuple(Option(v, lbl) for v, lbl in data.get("options", ())),
            scale=None
            if scale is None
            else Scale(scale[0], scale[1], tuple((int(k), str(v)) for k, v in scale[2])),
            min_picks=data.get("min_picks"),
            max_picks=data.get("max_picks"),
            allow_other=bool(data.get("allow_other", False)),
            optional=bool(data.get("optional", False)),
        )
