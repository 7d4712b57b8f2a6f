"""Fixtures for the Discord cog: a fake OpenAI-compatible LLM on loopback, a recording voice
client running discord.py's real player, and guild sessions wired to the real bridge server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from bots.discord.llm import ChatClient, ChatHistory
from bots.discord.session import GuildSession, Request
from bots.discord.settings import DiscordSettings
from bots.discord.testing import FakeChatServer, RecordingVoiceClient, Script


def discord_settings(**overrides: Any) -> DiscordSettings:
    """Validated settings with no environment or config file leaking in."""
    base = DiscordSettings.model_construct()
    values = {name: getattr(base, name) for name in DiscordSettings.model_fields}
    values.update(overrides)
    return DiscordSettings.model_validate(values)


@pytest_asyncio.fixture(scope="session")
async def llm_server() -> AsyncIterator[FakeChatServer]:
    server = await FakeChatServer().start()
    yield server
    await server.stop()


@pytest.fixture
def fake_llm(llm_server: FakeChatServer) -> FakeChatServer:
    """The shared fake LLM, reset to a short default reply for each test."""
    llm_server.script = Script()
    llm_server.script.tokens = ["Hello", " there."]
    llm_server.scripts.clear()
    llm_server.requests.clear()
    return llm_server


class PostedReply:
    """One posted message, replaceable the way the cog edits Discord messages."""

    def __init__(self, replies: Replies, index: int) -> None:
        self.replies = replies
        self.index = index

    async def replace(self, text: str) -> None:
        self.replies.messages[self.index] = text
        self.replies.replaced.append(self.index)


class Replies:
    """Collects what a session posts to the channel."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.replaced: list[int] = []  # indices of messages replaced after posting

    async def __call__(self, text: str) -> PostedReply:
        self.messages.append(text)
        return PostedReply(self, len(self.messages) - 1)

    def text(self) -> str:
        return "\n".join(self.messages)


@pytest.fixture
def replies() -> Replies:
    return Replies()


@pytest_asyncio.fixture
async def session_factory(fake_llm: FakeChatServer) -> AsyncIterator[Callable[..., Any]]:
    """GuildSession(s) on the given bridge URL with a recording voice client attached."""
    created: list[tuple[GuildSession, ChatClient, RecordingVoiceClient]] = []

    async def factory(
        bridge_url: str, *, voice: bool = True, **overrides: Any
    ) -> tuple[GuildSession, RecordingVoiceClient]:
        settings = discord_settings(**{"bridge_url": bridge_url, "llm_url": fake_llm.url, **overrides})
        chat = ChatClient(settings)
        session = GuildSession(len(created) + 1, settings, chat, ChatHistory(settings.history_turns))
        vc = RecordingVoiceClient()
        if voice:
            session.attach_voice(vc)
        created.append((session, chat, vc))
        return session, vc

    yield factory
    for session, chat, vc in created:
        await session.close()
        vc.stop()
        await chat.close()


def say(text: str, reply: Any = None, channel_id: int = 1) -> Request:
    return Request("say", text, channel_id=channel_id, reply=reply)


def speak(prompt: str, reply: Any = None, channel_id: int = 1, author: str = "ann") -> Request:
    return Request("speak", prompt, channel_id=channel_id, author=author, reply=reply)


class FedLog:
    """Every PCM byte each StreamSource was fed, in order, keyed by its stats object (the
    ``UtteranceReport.source`` of the utterance), to compare with what the player sent."""

    def __init__(self) -> None:
        self._chunks: dict[int, list[bytes]] = {}

    def add(self, stats: Any, pcm: bytes) -> None:
        self._chunks.setdefault(id(stats), []).append(pcm)

    def of(self, stats: Any) -> bytes:
        return b"".join(self._chunks.get(id(stats), []))


@pytest.fixture
def fed_log(monkeypatch: pytest.MonkeyPatch) -> FedLog:
    from bots.discord import source as source_module

    log = FedLog()
    original = source_module.StreamSource.feed

    def spy(self: Any, samples: Any) -> None:
        if not (self.aborted or self.finished):
            log.add(self.stats, source_module.to_discord_pcm(samples))
        original(self, samples)

    monkeypatch.setattr(source_module.StreamSource, "feed", spy)
    return log


def padded(pcm: bytes, frame: int = 3840) -> bytes:
    """``pcm`` with its last frame padded with zeros, as the source plays it."""
    return pcm + bytes(-len(pcm) % frame)
