"""A notice survives the outbox (JSON) unchanged, and reads as plain text in the terminal."""

from __future__ import annotations

import json

from bot.notices import FileKind, Line, Notice, NoticeFile, Section, Span, Style


def _notice() -> Notice:
    return Notice(
        title="Week 2026-W49",
        sections=(
            Section(
                "Needs you",
                (
                    Line.of(Span("Ana <script>", Style.BOLD), " wants to meet", bullet=True),
                    Line.of("mood ", Span("2", Style.CODE)),
                ),
            ),
            Section(None, (Line.of("& *bold* <!channel>"),)),
        ),
        files=(NoticeFile(FileKind.PHOTO, "chart.png", "image/png", b"\x89PNG\x00\xff", "chart"),),
    )


def test_round_trips_through_json_text_unchanged() -> None:
    notice = _notice()
    assert Notice.from_json(json.loads(json.dumps(notice.to_json()))) == notice


def test_plain_text_keeps_student_text_as_written() -> None:
    assert _notice().plain_text() == (
        "Week 2026-W49\n\nNeeds you\n• Ana <script> wants to meet\nmood 2\n\n& *bold* <!channel>"
    )
