"""Errors of the composition root; all derive from `ProfilebotError`."""

from __future__ import annotations

from dialogues.errors import ProfilebotError

__all__ = ["ConfigError", "ReplayError"]


class ConfigError(ProfilebotError):
    """A setting in the environment or `.env` is missing or malformed."""


class ReplayError(ProfilebotError):
    """A parked message could not be replayed: it failed again, or was replayed already."""
