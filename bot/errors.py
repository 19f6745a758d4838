"""Errors of the composition root; all derive from `ProfilebotError`."""

from __future__ import annotations

from dialogues.errors import ProfilebotError

__all__ = [
    "CalendarError",
    "ConfigError",
    "InputError",
    "NotAllowedError",
    "PlatformError",
    "ReplayError",
]


class ConfigError(ProfilebotError):
    """A setting in the environment or `.env` is missing or malformed."""


class NotAllowedError(ProfilebotError):
    """The person acting may not do this (``bot.roles``); the message says so politely."""


class PlatformError(ProfilebotError):
    """A chat platform refused a call or could not be reached."""


class ReplayError(ProfilebotError):
    """A parked message could not be replayed: it failed again, or was replayed already."""


class CalendarError(ProfilebotError):
    """A school calendar file could not be read as iCalendar."""


class InputError(ProfilebotError):
    """A command was given options that do not go together, or a value it cannot read."""
