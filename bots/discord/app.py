"""Start-up: settings, the checks that fail early with a clear message, the bot, ``main``.

Voice on Discord needs three things that are easy to miss: PyNaCl (transport encryption),
``davey`` (DAVE end-to-end encryption: Discord closes voice connections without it, code 4017,
and discord.py 2.7 refuses to start voice when it is missing) and libopus (a system library).
They are checked before logging in, not discovered at the first ``/join``.

After start-up, ``gc.freeze()`` moves everything loaded so far (discord.py's caches, numpy,
aiohttp) out of the collector's reach, so the full collections that happen during playback are
short: a long GC pause in the player thread is an audible gap.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes.util
import gc
import logging
import sys
from typing import Any

import aiohttp
import discord
from discord import opus
from discord.ext import commands
from pydantic import ValidationError

from bridge.client import BridgeClient, BridgeError
from bridge.logs import setup_logging
from bots.discord.cog import VoiceCog
from bots.discord.settings import DiscordSettings

log = logging.getLogger("bots.discord")

EXTRA_HINT = "pip install 'voice-bridge[discord]'"


def voice_dependency_problems(opus_library: str | None = None) -> list[str]:
    """What is missing for voice, one sentence each (empty: all good)."""
    from discord import voice_client, voice_state

    problems: list[str] = []
    if discord.version_info[:2] < (2, 7):
        problems.append(
            f"discord.py {discord.__version__} has no DAVE support; Discord requires it for voice. "
            f"Install discord.py 2.7 ({EXTRA_HINT})."
        )
    if not getattr(voice_client, "has_nacl", False):
        problems.append(f"PyNaCl is not installed, so discord.py cannot encrypt voice. Install it: {EXTRA_HINT}.")
    if not getattr(voice_state, "has_dave", False):
        problems.append(
            "davey is not installed. Discord requires DAVE end-to-end encryption for voice "
            "(connections without it are closed with code 4017) and discord.py 2.7 refuses voice "
            f"without it. Install it: {EXTRA_HINT}."
        )
    if not opus.is_loaded():
        name = opus_library or ctypes.util.find_library("opus")
        try:
            if name is None:
                raise OSError("not found")
            opus.load_opus(name)
        except OSError as exc:
            problems.append(
                f"libopus could not be loaded ({exc}). Install it (Debian/Ubuntu: apt-get install libopus0; "
                "macOS: brew install opus) or set VOICE_BRIDGE_DISCORD_OPUS_LIBRARY to its path."
            )
    return problems


async def service_problems(settings: DiscordSettings) -> list[str]:
    """Whether the bridge and the LLM answer (one quick attempt each)."""
    problems: list[str] = []
    try:
        client = await BridgeClient.connect(
            settings.bridge_url,
            api_key=settings.bridge_api_key.get_secret_value() if settings.bridge_api_key else None,
            open_timeout=settings.bridge_connect_timeout,
        )
        await client.close()
    except BridgeError as exc:
        problems.append(f"The voice bridge at {settings.bridge_url} is not reachable: {exc}")
    models_url = settings.chat_completions_url.removesuffix("/chat/completions") + "/models"
    headers = {"Authorization": f"Bearer {settings.llm_api_key.get_secret_value()}"} if settings.llm_api_key else {}
    try:
        timeout = aiohttp.ClientTimeout(total=settings.llm_connect_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(models_url, headers=headers) as response:
            if response.status >= 500 or response.status in (401, 403):
                problems.append(f"The LLM at {models_url} answered {response.status}.")
    except (aiohttp.ClientError, TimeoutError) as exc:
        problems.append(f"The LLM at {settings.llm_url} is not reachable: {exc or type(exc).__name__}")
    return problems


def freeze_gc() -> int:
    """Collect once, then freeze every surviving object; returns how many were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class VoiceBot(commands.Bot):
    """The bot: one :class:`VoiceCog`, slash commands synced at start-up."""

    def __init__(self, settings: DiscordSettings) -> None:
        intents = discord.Intents.default()
        intents.message_content = settings.message_content
        intents.voice_states = True
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self._frozen = False

    async def setup_hook(self) -> None:
        await self.add_cog(VoiceCog(self, self.settings))
        if self.settings.sync_commands:
            try:
                if self.settings.sync_guild_id is not None:
                    guild = discord.Object(id=self.settings.sync_guild_id)
                    self.tree.copy_global_to(guild=guild)
                    synced = await self.tree.sync(guild=guild)
                else:
                    synced = await self.tree.sync()
                log.info("slash commands synced", extra={"commands": len(synced), "guild": self.settings.sync_guild_id})
            except discord.HTTPException as exc:
                log.warning("slash command sync failed; prefix commands still work", extra={"error": str(exc)})
        for problem in await service_problems(self.settings):
            log.warning(problem)  # not fatal: commands will say so, and the bot reconnects

    async def on_ready(self) -> None:
        log.info("ready", extra={"user": str(self.user), "guilds": len(self.guilds)})
        if not self._frozen:
            self._frozen = True
            log.info("gc frozen after start-up", extra={"objects": freeze_gc()})

    async def on_command_error(self, context: commands.Context[Any], exception: commands.CommandError) -> None:
        if isinstance(exception, commands.CommandNotFound):
            return  # another bot's prefix command, most likely
        if context.cog is not None and context.cog.has_error_handler():
            return
        log.error("command error", exc_info=exception)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="voice-bridge-discord",
        description="A Discord bot that answers in a character's voice through voice-bridge. "
        "Settings: VOICE_BRIDGE_DISCORD_* variables or [discord] in voice-bridge.toml.",
    )
    parser.add_argument("--check", action="store_true", help="check dependencies, the bridge and the LLM, then exit")
    args = parser.parse_args(argv)
    try:
        settings = DiscordSettings()
    except (ValidationError, ValueError, FileNotFoundError) as exc:
        setup_logging()
        log.error("invalid settings: %s", exc)
        return 2
    setup_logging(settings.log_level, settings.log_json)
    problems = voice_dependency_problems(settings.opus_library)
    if args.check:
        problems += asyncio.run(service_problems(settings))
        if settings.token is None:
            problems.append("No bot token: set VOICE_BRIDGE_DISCORD_TOKEN (or token in [discord]).")
        for problem in problems:
            log.error(problem)
        if not problems:
            log.info("all checks passed")
        return 1 if problems else 0
    if problems:
        for problem in problems:
            log.error(problem)
        log.error("voice cannot work; not starting")
        return 2
    if settings.token is None:
        log.error("No bot token: set VOICE_BRIDGE_DISCORD_TOKEN (or token in [discord] of voice-bridge.toml).")
        return 2
    bot = VoiceBot(settings)
    try:
        bot.run(settings.token.get_secret_value(), log_handler=None)
    except discord.LoginFailure:
        log.error("Discord rejected the bot token (VOICE_BRIDGE_DISCORD_TOKEN).")
        return 2
    except discord.PrivilegedIntentsRequired:
        log.error(
            "The Message Content intent is not enabled for this bot. Enable it in the Developer Portal "
            "(Bot → Privileged Gateway Intents), or set VOICE_BRIDGE_DISCORD_MESSAGE_CONTENT=false "
            "to use slash commands and @mentions only."
        )
        return 2
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
