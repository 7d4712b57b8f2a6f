"""The Discord bot's settings.

Same mechanism as :mod:`bridge.config`: constructor arguments, then
``VOICE_BRIDGE_DISCORD_<FIELD>`` environment variables, then the ``[discord]`` table of the
shared config file (``VOICE_BRIDGE_CONFIG`` or ``./voice-bridge.toml``), then the defaults.
One file can therefore configure the server (top level) and the bot (``[discord]``); the server
skips that table.

    [discord]
    token = "..."
    busy_policy = "interrupt"
    [discord.llm]            # flattened: llm_url, llm_model
    url = "http://127.0.0.1:11434/v1"
    model = "llama3.2"
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bridge.client import DEFAULT_URL
from bridge.config import TomlSource, config_file_path, log_level_name, replace_block, settings_table, table_cli
from bridge.protocol import PITCH_SHIFT_LIMIT

ENV_PREFIX = "VOICE_BRIDGE_DISCORD_"
TOML_SECTION = "discord"

DEFAULT_PERSONA = (
    "You are Joe, a warm and witty character who chats with people in a Discord voice channel. "
    "Your replies are spoken aloud, so answer in two to four short, natural spoken sentences: "
    "no markdown, no lists, no code, no emoji, no URLs."
)


class DiscordSettings(BaseSettings):
    """Every knob of the Discord bot. See bots/discord/README.md for the table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, env_parse_none_str=""
    )

    # --- Discord ----------------------------------------------------------------------------
    token: SecretStr | None = Field(None, description="Bot token (required to run).")
    command_prefix: str = Field("!", min_length=1, description="Prefix for the text-command fallback.")
    sync_guild_id: int | None = Field(
        None, description="Sync slash commands to this guild at start-up (instant); else globally."
    )
    sync_commands: bool = Field(True, description="Sync slash commands at start-up.")
    message_content: bool = Field(
        True,
        description="Ask for the Message Content intent (prefix commands); off: slash commands and @mention only.",
    )
    post_text: bool = Field(True, description="Post the LLM's reply text in the channel.")
    opus_library: str | None = Field(None, description="Path or name of libopus if it is not found by default.")
    opus_bitrate: int = Field(128, ge=16, le=512, description="Opus bitrate in kbit/s.")
    voice_connect_timeout: float = Field(20.0, gt=0, description="Seconds to wait for a voice connection.")

    # --- behaviour --------------------------------------------------------------------------
    busy_policy: Literal["queue", "interrupt"] = Field(
        "queue", description="A new speak/say while one is playing: queue it, or interrupt the current one."
    )
    queue_size: int = Field(3, ge=0, description="Requests that may wait behind the one playing (queue policy).")
    voice: str | None = Field(None, description="RVC voice for new guild sessions (empty: the server's default).")
    pitch: float = Field(0.0, description="Pitch shift in semitones for new guild sessions.")

    # --- the bridge -------------------------------------------------------------------------
    bridge_url: str = Field(DEFAULT_URL, description="The voice-bridge WebSocket URL.")
    bridge_api_key: SecretStr | None = Field(None, description="Bearer token for the bridge, if it wants one.")
    bridge_connect_timeout: float = Field(5.0, gt=0, description="Seconds for one connection attempt.")
    bridge_retries: int = Field(3, ge=0, description="Extra connection attempts per request, with backoff.")
    bridge_backoff: float = Field(0.5, gt=0, description="First retry delay in seconds; doubles per retry.")
    bridge_backoff_max: float = Field(8.0, gt=0, description="Longest retry delay in seconds.")
    bridge_idle_seconds: float = Field(
        240.0,
        ge=0,
        description="Close a guild's bridge session after this long without requests (0: never); "
        "below the server's idle_timeout_seconds, so the bot closes first.",
    )
    bridge_stall_timeout: float = Field(
        30.0, gt=0, description="Give up on an utterance when the bridge sends nothing for this long."
    )

    # --- audio buffer -----------------------------------------------------------------------
    bridge_audio: Literal["pcm", "opus"] = Field(
        "pcm",
        description="What the bot asks the bridge for: pcm (48 kHz float32, encoded to Opus here) or opus "
        "(the bridge's 20 ms Opus packets, handed to Discord as they are: no encode in the bot, ~1/20 of the "
        "bytes; the bridge's opus_bitrate applies).",
    )
    buffer_seconds: float = Field(
        3.0, gt=0, le=60, description="Audio held in the bot; above it the bot stops reading the bridge."
    )
    low_water_seconds: float = Field(1.0, ge=0, description="Reading resumes when the buffer falls below this.")
    prebuffer_ms: int = Field(
        200,
        ge=0,
        le=2000,
        description="Jitter buffer: audio gathered before playback starts (and after an underrun)…",
    )
    prebuffer_max_wait_ms: int = Field(
        100, ge=0, le=2000, description="…but start anyway this long after the first audio arrived (0: at once)."
    )

    # --- the LLM ----------------------------------------------------------------------------
    llm_url: str = Field(
        "http://127.0.0.1:8080/v1",
        description="OpenAI-compatible base URL (…/v1) or the full …/chat/completions URL.",
    )
    llm_api_key: SecretStr | None = Field(None, description="Bearer token for the LLM API.")
    llm_model: str = Field("default", description="Model name sent in each request.")
    llm_temperature: float | None = Field(
        0.8, ge=0, le=2, description="Sampling temperature (empty: the server's default)."
    )
    llm_max_tokens: int | None = Field(
        300, ge=1, description="Reply length cap in tokens (empty: the server's default)."
    )
    llm_extra: dict[str, Any] = Field(
        default_factory=dict, description="Extra JSON fields for the request body (top_p, stop, …)."
    )
    llm_connect_timeout: float = Field(10.0, gt=0, description="Seconds to connect to the LLM.")
    llm_first_token_timeout: float = Field(
        60.0, gt=0, description="Seconds to wait for the first token (model loading included)."
    )
    llm_read_timeout: float = Field(30.0, gt=0, description="Longest silence between two chunks of the stream.")
    persona: str = Field(DEFAULT_PERSONA, description="System prompt: the character.")
    history_turns: int = Field(8, ge=0, description="Exchanges (prompt + reply) remembered per channel.")
    history_channels: int = Field(500, ge=1, description="Channels whose history is kept (least recent dropped).")

    # --- logging ----------------------------------------------------------------------------
    log_level: str = Field("INFO", description="stdlib logging level.")
    log_json: bool = Field(False, description="Log one JSON object per line.")

    @field_validator("pitch")
    @classmethod
    def _pitch_range(cls, value: float) -> float:
        if not math.isfinite(value) or abs(value) > PITCH_SHIFT_LIMIT:
            raise ValueError(f"pitch must be between -{PITCH_SHIFT_LIMIT:g} and {PITCH_SHIFT_LIMIT:g} semitones")
        return value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return log_level_name(value)

    @field_validator("bridge_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("bridge_url must start with ws:// or wss://")
        return value

    @field_validator("llm_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("llm_url must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _buffer_marks(self) -> DiscordSettings:
        if self.low_water_seconds >= self.buffer_seconds:
            raise ValueError("low_water_seconds must be below buffer_seconds")
        if self.prebuffer_ms / 1000 >= self.buffer_seconds:
            raise ValueError("prebuffer_ms must be below buffer_seconds")
        return self

    @property
    def chat_completions_url(self) -> str:
        """``llm_url`` with ``/chat/completions`` appended unless it is already there."""
        if self.llm_url.endswith("/chat/completions"):
            return self.llm_url
        return self.llm_url + "/chat/completions"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlSource(settings_cls, config_file_path(), section=TOML_SECTION))


def default_of(name: str) -> Any:
    """A setting's documented default, for the bot's parts that also run without settings."""
    return DiscordSettings.model_fields[name].default


def settings_markdown() -> str:
    """The README's settings table, generated from the fields (a test keeps them equal)."""
    return settings_table(DiscordSettings, ENV_PREFIX, shown={"persona": "a short character prompt"})


README_BEGIN = "<!-- discord-settings:begin -->"
README_END = "<!-- discord-settings:end -->"


def readme_with_settings(readme: str) -> str:
    """``readme`` with the text between the settings markers replaced by the current table."""
    return replace_block(readme, README_BEGIN, README_END, settings_markdown())


if __name__ == "__main__":  # python -m bots.discord.settings --update-readme bots/discord/README.md
    import sys

    table_cli(sys.argv[1:], settings_markdown, readme_with_settings)
