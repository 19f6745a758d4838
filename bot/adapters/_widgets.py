"""What the chat platforms' widgets have in common, whatever each one draws.

A tapped option means the same answer on every platform, and long text is cut the same way;
only how a platform counts a message's length differs (``fit``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from dialogues import Inbound, Reply, ReplyKind

__all__ = ["NO_INDEX", "YES_INDEX", "inbound_for_pick", "split_at_breaks"]

YES_INDEX: Final = 0
NO_INDEX: Final = 1
"""The index a yes/no question's buttons carry."""


def inbound_for_pick(reply: Reply, index: int) -> Inbound | None:
    """The answer a tap on the question's ``index``-th option button gives; None when the
    question has no such button (a forged or outdated tap)."""
    if index < 0:
        return None
    if reply.kind is ReplyKind.CHOICE and index < len(reply.options):
        return Inbound.of_button(reply.options[index].value)
    if reply.kind is ReplyKind.YES_NO and index in (YES_INDEX, NO_INDEX):
        return Inbound.of_button("yes" if index == YES_INDEX else "no")
    if reply.kind is ReplyKind.SCALE and reply.scale is not None:
        value = reply.scale.min + index
        if value <= reply.scale.max:
            return Inbound.of_button(str(value))
    return None


def split_at_breaks(text: str, limit: int, fit: Callable[[str, int], int]) -> list[str]:
    """Split plain text into parts of at most ``limit``, as ``fit(text, limit)`` (how many
    leading characters fit) counts for the platform.

    Cuts prefer a paragraph break, then a line break, then a space (each only in the second
    half of the window, so parts stay full), else a hard cut. The separator and whitespace
    around a cut are dropped; everything else is kept in order. Whitespace-only text gives
    ``[]``: platforms refuse empty messages.
    """
    parts: list[str] = []
    rest = text.strip()
    while rest:
        n = fit(rest, limit)
        if n == len(rest):
            parts.append(rest)
            break
        head, tail = rest[:n], rest[n:]  # hard cut unless a separator is found below
        for sep in ("\n\n", "\n", " "):
            # The separator itself may straddle the window end: it is dropped, not sent.
            cut = rest.rfind(sep, 0, n + len(sep))
            if cut >= max(1, n // 2):
                head, tail = rest[:cut], rest[cut + len(sep) :]
                break
        parts.append(head.rstrip())
        rest = tail.lstrip()
    return parts
