"""The two small changes under bridge/ the bot needs: the client's cancel keeps events and never
hands out a frame read before the cancel; the config file may hold a [discord] table."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.client import AudioChunk, BridgeClient, Event
from bridge.config import Settings
from bots.discord.settings import DiscordSettings

LONG = "This is a long answer that goes on and on about many different things. " * 6


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def _queued(client: BridgeClient) -> list:
    return [entry[1] for entry in list(client._queue._queue) if entry is not None]  # noqa: SLF001


async def test_cancel_never_hands_out_a_frame_held_by_the_blocked_reader(server) -> None:
    async with await BridgeClient.connect(server.ws_url, queue_frames=2) as client:
        await client.send_token(LONG)
        await client.flush()
        await _wait_for(client._queue.full)  # noqa: SLF001
        # The reader now holds a third frame, waiting for room in the queue.
        await _wait_for(lambda: len(client._queue._putters) > 0)  # noqa: SLF001
        await client.cancel()
        async for item in client.receive():
            assert not isinstance(item, AudioChunk), "stale audio after cancel"
            if isinstance(item, Event) and item.type == "cancelled":
                break
        audio = await client.speak("Fresh start.")
    assert audio.size > 0


async def test_a_second_cancel_keeps_the_first_cancelled_event(server) -> None:
    async with await BridgeClient.connect(server.ws_url) as client:
        await client.send_token(LONG)
        await client.flush()
        await client.cancel()
        await _wait_for(lambda: any(isinstance(i, Event) and i.type == "cancelled" for i in _queued(client)))
        await client.cancel()
        cancelled = 0
        async for item in client.receive():
            assert not isinstance(item, AudioChunk)
            if isinstance(item, Event) and item.type == "cancelled":
                cancelled += 1
                if cancelled == 2:
                    break
    assert cancelled == 2


def test_server_settings_skip_the_discord_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "voice-bridge.toml"
    config.write_text('port = 9999\n[discord]\nbusy_policy = "interrupt"\n[discord.llm]\nmodel = "llama3.2"\n')
    monkeypatch.setenv("VOICE_BRIDGE_CONFIG", str(config))
    assert Settings().port == 9999
    bot = DiscordSettings()
    assert bot.busy_policy == "interrupt" and bot.llm_model == "llama3.2"


def test_unknown_keys_in_the_discord_table_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "voice-bridge.toml"
    config.write_text("[discord]\nbusy_polcy = 'queue'\n")
    monkeypatch.setenv("VOICE_BRIDGE_CONFIG", str(config))
    with pytest.raises(ValueError, match=r"\[discord\].*busy_polcy"):
        DiscordSettings()
    assert Settings().port == 8765  # the server does not care
