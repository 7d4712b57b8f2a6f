"""The Discord edge (commands with stand-in contexts), start-up checks, settings and README."""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bots.discord import app as app_module
from bots.discord.cog import VoiceCog, split_message, user_message_for
from bots.discord.errors import NotInVoice
from bots.discord.settings import DiscordSettings, readme_with_settings
from bots.discord.testing import RecordingVoiceClient
from tests.discord.conftest import discord_settings

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- stand-ins
class FakeChannel:
    def __init__(self, name: str, *, can_speak: bool = True, fail: BaseException | None = None) -> None:
        self.id = hash(name) & 0xFFFF
        self.mention = f"#{name}"
        self.can_speak = can_speak
        self.fail = fail
        self.sent: list[str] = []

    def permissions_for(self, member: Any) -> Any:
        return SimpleNamespace(connect=self.can_speak, speak=self.can_speak)

    async def connect(self, *, timeout: float, self_deaf: bool) -> RecordingVoiceClient:
        if self.fail is not None:
            raise self.fail
        vc = RecordingVoiceClient()
        vc.channel = self  # type: ignore[attr-defined]
        return vc

    async def send(self, text: str, **kwargs: Any) -> None:
        self.sent.append(text)


class FakeContext:
    """What the cog reads from a commands.Context, and what it sends back."""

    def __init__(self, guild: Any, *, voice_channel: FakeChannel | None = None, slash: bool = False) -> None:
        self.guild = guild
        voice = SimpleNamespace(channel=voice_channel) if voice_channel else None
        self.author = SimpleNamespace(display_name="ann", voice=voice)
        self.channel = FakeChannel("general")
        self.interaction = object() if slash else None
        self.command = None
        self.sent: list[tuple[str, Any]] = []

    async def defer(self, *, ephemeral: bool = False) -> None:
        pass

    async def send(self, text: str, **kwargs: Any) -> None:
        self.sent.append((text, kwargs.get("allowed_mentions")))

    @property
    def texts(self) -> list[str]:
        return [text for text, _ in self.sent]


def fake_guild(guild_id: int = 42) -> Any:
    return SimpleNamespace(id=guild_id, me=object(), voice_client=None)


@pytest.fixture
async def cog(server, fake_llm):
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    cog = VoiceCog(bot, discord_settings(bridge_url=server.ws_url, llm_url=fake_llm.url))
    yield cog
    await cog.cog_unload()


async def run(cog: VoiceCog, name: str, ctx: FakeContext, *args: Any, **kwargs: Any) -> None:
    """Invoke a command's callback; an exception goes through the cog's error handler, wrapped
    the way discord.py wraps it (HybridCommandError for slash, CommandInvokeError for prefix)."""
    command = getattr(VoiceCog, name)
    ctx.command = command
    try:
        await command.callback(cog, ctx, *args, **kwargs)
    except Exception as exc:
        if ctx.interaction is not None:
            wrapped: Exception = commands.HybridCommandError(app_commands.CommandInvokeError(command.app_command, exc))
        else:
            wrapped = commands.CommandInvokeError(exc)
        await cog.cog_command_error(ctx, wrapped)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- commands
async def test_join_needs_the_author_in_voice_and_permissions(cog) -> None:
    guild = fake_guild()
    ctx = FakeContext(guild)
    await run(cog, "join", ctx)
    assert ctx.texts == ["Join a voice channel first, then use `/join`."]
    ctx = FakeContext(guild, voice_channel=FakeChannel("locked", can_speak=False))
    await run(cog, "join", ctx)
    assert ctx.texts == ["I need the Connect and Speak permissions in #locked."]


@pytest.mark.parametrize(
    ("failure", "fragment"),
    [
        (asyncio.TimeoutError(), "couldn't connect to #lounge in time"),
        (discord.ConnectionClosed(SimpleNamespace(close_code=4017), shard_id=None), "requires DAVE"),
        (discord.ClientException("Already connected to a voice channel."), "couldn't join #lounge"),
        (RuntimeError("davey library needed in order to use voice"), "davey library needed"),
    ],
)
async def test_join_failures_are_explained(cog, failure, fragment) -> None:
    ctx = FakeContext(fake_guild(), voice_channel=FakeChannel("lounge", fail=failure))
    await run(cog, "join", ctx)
    assert len(ctx.texts) == 1 and fragment in ctx.texts[0]


async def test_join_speak_stop_leave(cog, fake_llm) -> None:
    guild = fake_guild()
    lounge = FakeChannel("lounge")
    ctx = FakeContext(guild, voice_channel=lounge)
    await run(cog, "join", ctx)
    assert ctx.texts == ["Joined #lounge. Use `/speak` to talk to me."]
    session = cog.sessions[guild.id]
    guild.voice_client = session.voice  # what discord.py would now report

    fake_llm.script.tokens = ["Hi", " @everyone", "!"]
    ctx = FakeContext(guild, voice_channel=lounge, slash=True)
    await run(cog, "speak", ctx, prompt="say hi to everyone")
    report = await asyncio.wait_for(_next_report(session), 30)
    assert report.outcome == "done" and report.source.audio_frames > 0
    [(text, mentions)] = ctx.sent
    assert text == "Hi @everyone!" and mentions is not None and not mentions.everyone  # never pings

    ctx = FakeContext(guild, voice_channel=lounge, slash=True)
    await run(cog, "say", ctx, text="Hello!")
    assert ctx.texts == ["🔊"]  # a slash command must be answered; the text is the user's own
    ctx = FakeContext(guild)
    await run(cog, "stop", ctx)
    assert ctx.texts[0] in ("Stopped.", "Nothing is playing.")

    ctx = FakeContext(guild)
    await run(cog, "leave", ctx)
    assert ctx.texts == ["Bye!"] and guild.id not in cog.sessions
    assert not guild.voice_client.is_connected()


async def test_slash_speak_is_answered_when_the_text_is_not_posted(server, fake_llm) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none())
    cog = VoiceCog(bot, discord_settings(bridge_url=server.ws_url, llm_url=fake_llm.url, post_text=False))
    try:
        guild = fake_guild(11)
        await run(cog, "join", FakeContext(guild, voice_channel=FakeChannel("lounge")))
        ctx = FakeContext(guild, slash=True)
        await run(cog, "speak", ctx, prompt="hi")
        report = await asyncio.wait_for(_next_report(cog.sessions[guild.id]), 30)
        assert report.outcome == "done" and ctx.texts == ["🔊"]
    finally:
        await cog.cog_unload()


async def _next_report(session) -> Any:
    while not session.reports:
        await asyncio.sleep(0.05)
    return session.reports[-1]


async def test_speak_without_joining_says_how(cog) -> None:
    ctx = FakeContext(fake_guild(), slash=True)
    await run(cog, "speak", ctx, prompt="hello")
    assert ctx.texts == [NotInVoice.user_message]
    ctx = FakeContext(fake_guild())
    await run(cog, "say", ctx, text="hello")
    assert ctx.texts == [NotInVoice.user_message]


async def test_pitch_voice_and_stop_answers(cog) -> None:
    guild = fake_guild(7)
    ctx = FakeContext(guild)
    await run(cog, "pitch", ctx)
    assert ctx.texts == ["Pitch is +0 semitones."]
    ctx = FakeContext(guild)
    await run(cog, "pitch", ctx, "up a bit")
    assert ctx.texts == ["Pitch is a number of semitones, like `/pitch 3` or `/pitch -2.5`."]
    ctx = FakeContext(guild, slash=True)
    await run(cog, "pitch", ctx, "99")
    assert ctx.texts == ["Pitch must be between -24 and +24 semitones."]
    ctx = FakeContext(guild)
    await run(cog, "voice", ctx)
    assert "no other voices installed" in ctx.texts[0]
    ctx = FakeContext(fake_guild(8))
    await run(cog, "stop", ctx)
    assert ctx.texts == ["Nothing is playing."]


async def test_being_disconnected_from_voice_stops_the_session(cog) -> None:
    guild = fake_guild(9)
    ctx = FakeContext(guild, voice_channel=FakeChannel("lounge"))
    await run(cog, "join", ctx)
    me = SimpleNamespace(id=1234, guild=guild)
    cog.bot._connection.user = SimpleNamespace(id=1234)  # noqa: SLF001 - bot.user without logging in
    await cog.on_voice_state_update(me, SimpleNamespace(channel=object()), SimpleNamespace(channel=None))
    assert cog.sessions[guild.id].voice is None


def test_split_message_keeps_discord_limits() -> None:
    text = ("word " * 900).strip()
    parts = split_message(text)
    assert all(0 < len(p) <= 2000 for p in parts) and " ".join(parts) == text
    assert split_message("x" * 4500) == ["x" * 2000, "x" * 2000, "x" * 500]
    assert split_message("  ") == []


def test_error_messages_for_discord_errors() -> None:
    param = SimpleNamespace(name="prompt", displayed_name="prompt")
    missing = commands.MissingRequiredArgument(param)  # type: ignore[arg-type]
    ctx = SimpleNamespace(command=SimpleNamespace(qualified_name="speak"))
    assert user_message_for(missing, ctx) == "Missing `prompt`: try `/speak prompt`."  # type: ignore[arg-type]
    assert user_message_for(commands.NoPrivateMessage()) == "That only works in a server."
    assert user_message_for(commands.CommandInvokeError(ValueError("boom"))).startswith("Something went wrong")


# ----------------------------------------------------------------------------- start-up
def test_voice_dependencies_are_checked_with_clear_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    from discord import voice_client, voice_state

    assert app_module.voice_dependency_problems() == []  # this environment has everything
    monkeypatch.setattr(voice_client, "has_nacl", False)
    monkeypatch.setattr(voice_state, "has_dave", False)
    monkeypatch.setattr(app_module.opus, "is_loaded", lambda: False)
    problems = app_module.voice_dependency_problems(opus_library="/nonexistent/libopus.so")
    assert len(problems) == 3
    assert "PyNaCl" in problems[0] and "voice-bridge[discord]" in problems[0]
    assert "davey" in problems[1] and "DAVE" in problems[1] and "4017" in problems[1]
    assert "libopus" in problems[2] and "libopus0" in problems[2]


def test_main_refuses_to_start_without_what_voice_needs(monkeypatch, caplog, tmp_path) -> None:
    from discord import voice_state

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VOICE_BRIDGE_DISCORD_TOKEN", raising=False)
    monkeypatch.setattr(app_module, "setup_logging", lambda *a, **k: None)
    with caplog.at_level(logging.ERROR):
        assert app_module.main([]) == 2
    assert "No bot token" in caplog.text
    monkeypatch.setattr(voice_state, "has_dave", False)
    monkeypatch.setenv("VOICE_BRIDGE_DISCORD_TOKEN", "x")
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert app_module.main([]) == 2
    assert "davey is not installed" in caplog.text and "not starting" in caplog.text
    monkeypatch.setenv("VOICE_BRIDGE_DISCORD_LOW_WATER_SECONDS", "9")
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert app_module.main([]) == 2
    assert "invalid settings" in caplog.text and "low_water_seconds" in caplog.text


async def test_check_reports_the_bridge_and_the_llm(server, fake_llm) -> None:
    ok = discord_settings(bridge_url=server.ws_url, llm_url=fake_llm.url)
    assert await app_module.service_problems(ok) == []
    down = discord_settings(bridge_url="ws://127.0.0.1:9/ws/stream", llm_url="http://127.0.0.1:9/v1")
    problems = await app_module.service_problems(down)
    assert len(problems) == 2 and "voice bridge" in problems[0] and "LLM" in problems[1]


def test_gc_is_frozen_after_start_up() -> None:
    try:
        assert app_module.freeze_gc() > 0 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_module_and_console_script_entry_points() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["voice-bridge-discord"] == "bots.discord.app:run"
    result = subprocess.run(
        [sys.executable, "-m", "bots.discord", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "--check" in result.stdout


# ----------------------------------------------------------------------------- settings
def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOICE_BRIDGE_DISCORD_BUSY_POLICY", "interrupt")
    monkeypatch.setenv("VOICE_BRIDGE_DISCORD_LLM_TEMPERATURE", "")
    monkeypatch.setenv("VOICE_BRIDGE_DISCORD_LLM_EXTRA", '{"top_p": 0.9}')
    settings = DiscordSettings()
    assert settings.busy_policy == "interrupt" and settings.llm_temperature is None
    assert settings.llm_extra == {"top_p": 0.9}
    assert settings.chat_completions_url == "http://127.0.0.1:8080/v1/chat/completions"


@pytest.mark.parametrize(
    "overrides",
    [
        {"busy_policy": "shout"},
        {"pitch": 30},
        {"bridge_url": "http://x"},
        {"llm_url": "ws://x"},
        {"low_water_seconds": 3.0},
        {"prebuffer_ms": 5000},
        {"log_level": "LOUD"},
    ],
)
def test_settings_are_validated(overrides: dict) -> None:
    with pytest.raises(ValueError):
        discord_settings(**overrides)


def test_readme_settings_table_is_current() -> None:
    readme = (ROOT / "bots" / "discord" / "README.md").read_text(encoding="utf-8")
    fix = "python -m bots.discord.settings --update-readme bots/discord/README.md"
    assert readme == readme_with_settings(readme), f"run: {fix}"


# ----------------------------------------------------------------------------- replacing a reply
class SentMessage:
    """A posted message the cog can edit or delete, as discord.Message."""

    def __init__(self, board: list[SentMessage | None], content: str) -> None:
        self.board, self.content = board, content
        board.append(self)

    async def edit(self, *, content: str, **kwargs: Any) -> None:
        self.content = content

    async def delete(self) -> None:
        self.board[self.board.index(self)] = None


async def test_a_posted_reply_is_replaced_by_the_heard_part() -> None:
    from bots.discord.cog import MESSAGE_LIMIT, make_reply

    board: list[SentMessage | None] = []

    async def send(text: str, **kwargs: Any) -> SentMessage:
        return SentMessage(board, text)

    ctx = SimpleNamespace(send=send, channel=SimpleNamespace(send=send))
    long_reply = ("word " * (MESSAGE_LIMIT // 5 * 3)).strip()  # three messages
    posted = await make_reply(ctx)(long_reply)  # type: ignore[arg-type]
    assert len(board) >= 3
    await posted.replace("word word — *(interrupted)*")
    assert [m.content for m in board if m is not None] == ["word word — *(interrupted)*"]
