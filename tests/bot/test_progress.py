"""Progress of long fan-outs: a bar on a terminal, nothing in a pipe; one summary line."""

from __future__ import annotations

import io

from bot.progress import Progress, summary


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_no_bar() -> None:
    pipe = io.StringIO()
    with Progress("Starting survey", total=3, stream=pipe) as bar:
        assert not bar.shown
        bar.advance()
        bar.update(description="Queueing", total=4)
        bar.advance(3)
    assert pipe.getvalue() == ""


def test_a_terminal_gets_a_bar_that_counts_and_is_gone_at_the_end() -> None:
    screen = Terminal()
    with Progress("Starting survey", total=30, stream=screen) as bar:
        assert bar.shown
        bar.advance(12)
    assert not bar.shown
    drawn = screen.getvalue()
    assert "Starting survey" in drawn and "12/30" in drawn
    assert drawn.endswith("\x1b[1A\x1b[2K")  # the bar's line is erased: nothing is left


def test_the_summary_is_the_output_or_goes_to_a_watching_stderr_beside_json() -> None:
    out, pipe, screen = io.StringIO(), io.StringIO(), Terminal()
    summary("sent: 3 started", as_json=False, out=out, err=screen)
    assert out.getvalue() == "sent: 3 started\n" and screen.getvalue() == ""

    out = io.StringIO()
    summary("sent: 3 started", as_json=True, out=out, err=pipe)
    assert out.getvalue() == "" and pipe.getvalue() == ""
    summary("sent: 3 started", as_json=True, out=out, err=screen)
    assert out.getvalue() == "" and screen.getvalue() == "sent: 3 started\n"
