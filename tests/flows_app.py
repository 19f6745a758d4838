"""An app on a test database with flows of the test's own, on a clock the test moves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.app import App
from bot.clock import Clock
from bot.config import load_settings
from storage import Database

CLUB_FLOW = """
id: club
version: 1
title: Club
intro: "Hi {{ person.first_name }}! A quick one about the club."
settings:
  remind_after: 1d
  max_reminders: 2
  expire_after: 3d
steps:
  - id: sport
    ask: Favourite sport?
    type: choice
    options: [football, swimming]
  - id: why
    ask: Why that one?
    type: text
"""
"""A two-question survey with reminders and an expiry, the way schools write them."""


def app_with_flows(
    database: Database, folder: Path, clock: Clock, flows: dict[str, str], **settings: Any
) -> App:
    """The app on ``database``, its flow folder ``folder`` holding ``flows`` (id → YAML)."""
    folder.mkdir()
    for flow_id, source in flows.items():
        (folder / f"{flow_id}.yaml").write_text(source)
    url = database.url.render_as_string(hide_password=False)
    return App.create(
        load_settings(database_url=url, profilebot_flows_dir=folder, **settings), clock=clock
    )
