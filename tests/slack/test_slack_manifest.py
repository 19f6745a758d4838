"""The Slack app manifest asks for what the adapter uses: its events, command and scopes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.adapters import slack
from bot.adapters.slack import COMMAND, EVENTS_PATH

MANIFEST = Path(__file__).parents[2] / "docs" / "slack-app-manifest.yaml"
ADAPTER = Path(slack.__file__)

# The scope each Web API method the adapter calls needs (Slack's method reference).
SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "conversations_open": "im:write",
    "files_getUploadURLExternal": "files:write",
    "files_completeUploadExternal": "files:write",
    "users_info": "users:read",
    "views_publish": None,
    "auth_test": None,
}


def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_manifest_subscribes_to_exactly_the_events_the_bot_handles() -> None:
    settings = manifest()["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"message.im", "app_home_opened"}
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True  # no public URL needed by default
    for url in (
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        manifest()["features"]["slash_commands"][0]["url"],
    ):
        assert url.endswith(EVENTS_PATH)


def test_the_manifest_has_the_slash_command_and_the_home_tab() -> None:
    features = manifest()["features"]
    [command] = features["slash_commands"]
    assert command["command"] == COMMAND
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is False


def test_the_manifest_asks_for_the_scopes_the_adapter_uses_and_no_more() -> None:
    source = ADAPTER.read_text()
    called = set(re.findall(r"\.client\.(\w+)\(|\._client\.(\w+)\(", source))
    methods = {name for pair in called for name in pair if name}
    raw = re.findall(r'_call\(\s*"([\w.]+)"', source)  # calls made over aiohttp directly
    methods |= {name.replace(".", "_") for name in raw}
    assert {"chat_postMessage", "chat_update", "users_info"} <= methods
    assert methods <= set(SCOPES), methods - set(SCOPES)
    needed = {SCOPES[m] for m in methods} - {None}
    needed |= {"commands", "im:history", "im:read", "users:read.email"}  # events, command, email
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed
