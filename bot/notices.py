"""Messages that are not dialogue turns: an advisor's summary, a survey's results, a card.

A ``Notice`` is neutral formatted content (sections of lines made of styled spans) plus files
(a chart, a PDF). Whoever builds one writes no markup: each adapter renders it with its own
(Telegram HTML, Slack Block Kit, plain text in the terminal) and escapes every span's text
itself, so a student's ``<script>`` or ``<!channel>`` is only ever shown, never obeyed. The
dialogue core's ``Reply`` stays about dialogues.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["FileKind", "Line", "Notice", "NoticeFile", "Section", "Span", "Style"]


class Style(StrEnum):
    PLAIN = "plain"
    BOLD = "bold"
    ITALIC = "italic"
    CODE = "code"


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text in one style; the text is raw (never markup)."""

    text: str
    style: Style = Style.PLAIN


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a section; ``bullet`` lines are list items."""

    spans: tuple[Span, ...]
    bullet: bool = False

    @classmethod
    def of(cls, *parts: str | Span, bullet: bool = False) -> Line:
        """A line from plain strings and spans, in order."""
        return cls(tuple(Span(p) if isinstance(p, str) else p for p in parts), bullet)

    @property
    def text(self) -> str:
        return "".join(span.text for span in self.spans)


@dataclass(frozen=True, slots=True)
class Section:
    """A titled block of lines (``title`` None: no heading)."""

    title: str | None
    lines: tuple[Line, ...] = ()


class FileKind(StrEnum):
    PHOTO = "photo"
    """Shown inline (a chart): Telegram ``sendPhoto``, a Slack image upload."""
    DOCUMENT = "document"
    """Sent as a file to open (a PDF): Telegram ``sendDocument``, a Slack file upload."""


@dataclass(frozen=True, slots=True)
class NoticeFile:
    kind: FileKind
    filename: str
    mime_type: str
    data: bytes
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """A whole message: a title, sections, then files, in that order on every platform."""

    title: str
    sections: tuple[Section, ...] = ()
    files: tuple[NoticeFile, ...] = ()

    def plain_text(self) -> str:
        """The notice as plain text: the terminal's rendering, and every platform's fallback."""
        out = [self.title]
        for section in self.sections:
            out.append("")
            if section.title:
                out.append(section.title)
            out.extend(("• " if line.bullet else "") + line.text for line in section.lines)
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "sections": [_section_json(s) for s in self.sections],
            "files": [_file_json(f) for f in self.files],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notice:
        return cls(
            title=str(data["title"]),
            sections=tuple(_section(s) for s in data.get("sections", ())),
            files=tuple(_file(f) for f in data.get("files", ())),
        )


def _section_json(section: Section) -> dict[str, Any]:
    return {
        "title": section.title,
        "lines": [
            {"bullet": line.bullet, "spans": [[s.text, s.style.value] for s in line.spans]}
            for line in section.lines
        ],
    }


def _section(data: Mapping[str, Any]) -> Section:
    lines: Iterable[Mapping[str, Any]] = data.get("lines", ())
    return Section(
        title=data.get("title"),
        lines=tuple(
            Line(tuple(Span(str(t), Style(s)) for t, s in line["spans"]), bool(line["bullet"]))
            for line in lines
        ),
    )


def _file_json(file: NoticeFile) -> dict[str, Any]:
    return {
        "kind": file.kind.value,
        "filename": file.filename,
        "mime_type": file.mime_type,
        "caption": file.caption,
        "data": base64.b64encode(file.data).decode("ascii"),
    }


def _file(data: Mapping[str, Any]) -> NoticeFile:
    return NoticeFile(
        kind=FileKind(data["kind"]),
        filename=str(data["filename"]),
        mime_type=str(data["mime_type"]),
        data=base64.b64decode(data["data"]),
        caption=str(data.get("caption", "")),
    )
