"""bots/discord/settings.py: the bot's settings come from the [discord] table of the server's
config file, which the server's own settings skip; a mistyped key there is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import Settings
from bots.discord.settings import DiscordSettings


def test_server_settings_skip_the_discord_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "voice-bridge.toml"
    config.write_text('port = 9999\n[discord]\nbusy_policy = "interrupt"\n[discord.llm]\nmodel = "llama3.2"\n')
    monkeypatch.setenv("VOICE_BRIDGE_CONFIG", str(config))
    assert Settings().server.port == 9999
    bot = DiscordSettings()
    assert bot.busy_policy == "interrupt" and bot.llm_model == "llama3.2"


def test_unknown_keys_in_the_discord_table_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "voice-bridge.toml"
    config.write_text("[discord]\nbusy_polcy = 'queue'\n")
    monkeypatch.setenv("VOICE_BRIDGE_CONFIG", str(config))
    with pytest.raises(ValueError, match=r"\[discord\].*busy_polcy"):
        DiscordSettings()
    assert Settings().server.port == 8765  # the server does not care
