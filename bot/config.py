"""Settings from the environment or `.env` — the only place profilebot reads either."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError
from .quiet_hours import DEFAULT_QUIET_HOURS, QuietHours
from .safety_phrases import DEFAULT_SAFETY_MESSAGE, load_phrases

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """Every setting profilebot reads; `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    database_url: str = "sqlite:///profilebot.db"
    default_timezone: str = "UTC"
    quiet_hours: str = DEFAULT_QUIET_HOURS
    profilebot_flows_dir: Path | None = None
    log_level: str = "WARNING"
    retention_days: int = 365
    safety_phrases_file: Path | None = None
    safety_message: str = DEFAULT_SAFETY_MESSAGE

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_base_url: str = "https://slack.com/api/"

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
            ) from None
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_range(cls, value: str) -> str:
        return str(QuietHours.parse(value))

    @field_validator("profilebot_flows_dir")
    @classmethod
    def _existing_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            what = "is not a folder" if value.exists() else "does not exist"
            raise ValueError(f"{str(value)!r} {what} (it should hold your flow files)")
        return value

    @field_validator("retention_days")
    @classmethod
    def _positive_days(cls, value: int) -> int:
        if value < 1:
            raise ValueError("give a number of days, at least 1")
        return value

    @field_validator("safety_phrases_file")
    @classmethod
    def _readable_phrases(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_phrases(value)  # a bad file stops the bot at start, not at the first match
        return value

    @field_validator("safety_message")
    @classmethod
    def _some_message(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a student who writes a safety phrase must be shown something")
        return value.strip()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @property
    def quiet(self) -> QuietHours:
        """``QUIET_HOURS`` as a value (validated when the settings were read)."""
        return QuietHours.parse(self.quiet_hours)

    @property
    def retention(self) -> timedelta:
        """How long transcripts and sent messages are kept (``RETENTION_DAYS``)."""
        return timedelta(days=self.retention_days)

    @property
    def flow_dirs(self) -> list[Path]:
        return [self.profilebot_flows_dir] if self.profilebot_flows_dir else []


def load_settings(**overrides: object) -> Settings:
    """Settings, or a `ConfigError` naming the bad setting in one line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]).upper()
        raise ConfigError(f"setting {name}: {first['msg']}") from None
