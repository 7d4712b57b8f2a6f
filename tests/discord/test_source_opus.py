"""The bot's Opus path: the bridge's 20 ms Opus packets handed to discord.py's real AudioPlayer
as an ``is_opus()`` source (no encoder in the bot), against the PCM path on the same voice."""

from __future__ import annotations

import asyncio

import jiwer
import numpy as np

from bots.discord.source import OPUS_SILENCE, OpusStreamSource
from bots.discord.testing import RecordingVoiceClient
from bridge.audio.decode import OpusPacketDecoder
from bridge.audio.encode import OpusPacketEncoder
from tests.conftest import transcribe
from tests.discord.conftest import say
from tests.support.engines_util import wait_until

REPLY = "Sure. The library opens at nine tomorrow, and the café next door serves breakfast until eleven."
WORDS = "sure the library opens at nine tomorrow and the cafe next door serves breakfast until eleven"


def _words(text: str) -> str:
    text = text.lower().replace("é", "e").replace("9", "nine").replace("11", "eleven")
    return " ".join("".join(c for c in text if c.isalnum() or c.isspace()).split())


async def test_the_player_sends_the_packets_as_they_are(tmp_path) -> None:
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(48000) / 48000)).astype(np.float32)
    encoder = OpusPacketEncoder()
    packets = encoder.push(tone[:30000]) + encoder.end_utterance()
    source = OpusStreamSource(prebuffer_seconds=0.1, prebuffer_max_wait=0.05)
    vc = RecordingVoiceClient()
    for packet in packets:
        source.feed_packet(packet)
    source.finish()
    ended = asyncio.Event()
    vc.play(source, after=lambda error: vc.loop.call_soon_threadsafe(ended.set))
    await asyncio.wait_for(ended.wait(), 30)
    sent = vc.snapshot()
    audio = [p for p in sent if p.opus != OPUS_SILENCE]
    assert vc.encoder is None  # no Opus encoder was made: nothing was encoded twice
    assert [p.opus for p in audio] == packets and all(p.pcm is None for p in sent)
    assert [p.tick for p in audio] == list(range(len(audio)))  # one packet per 20 ms tick
    assert source.played_out and source.stats.audio_frames == len(packets)
    assert source.stats.fed_bytes == len(packets) * 3840 and source.opus_bytes == sum(map(len, packets))


async def test_abort_and_backpressure_count_packets_like_frames() -> None:
    source = OpusStreamSource(max_seconds=0.2, low_water_seconds=0.1, prebuffer_seconds=0.0)
    for _ in range(10):
        source.feed_packet(b"\x01\x02\x03")
    assert source.full and source.buffered_seconds == 0.2
    waiting = asyncio.create_task(source.wait_for_room())
    reads = [await asyncio.to_thread(source.read) for _ in range(5)]
    await asyncio.wait_for(waiting, 5)  # woken at the low-water mark, from the reading thread
    assert reads == [b"\x01\x02\x03"] * 5 and source.buffered_bytes == 5 * 3840
    source.abort()
    assert source.read() == b"" and source.buffered_bytes == 0


async def play_reply(session_factory, url: str, **settings) -> tuple[list, object]:
    session, vc = await session_factory(url, **settings)
    note, done = await session.submit(say(REPLY))
    assert note is None
    report = await asyncio.wait_for(done, 60)
    assert report.outcome == "done", report.error
    player = vc._player  # noqa: SLF001
    await wait_until(lambda: player is None or not player.is_alive(), "the player has ended")
    return vc.snapshot(), report


async def test_opus_from_the_bridge_plays_like_the_pcm_path(steady, session_factory, whisper) -> None:
    pcm_sent, pcm_report = await play_reply(session_factory, steady.ws_url)
    opus_sent, opus_report = await play_reply(session_factory, steady.ws_url, bridge_audio="opus")
    # The Opus path: packets from the bridge, sent without an encoder, one per tick, no gaps.
    opus_audio = [p for p in opus_sent if p.source is not None and p.opus != OPUS_SILENCE and p.pcm is None]
    assert opus_report.source.underrun_frames == 0
    assert len(opus_audio) == opus_report.source.audio_frames > 150
    # The PCM path encoded the same speech here; both last as long (whole 20 ms frames).
    pcm_audio = [p for p in pcm_sent if p.pcm is not None]
    assert abs(len(pcm_audio) - len(opus_audio)) <= 1
    decoder = OpusPacketDecoder()
    heard_opus = np.concatenate([decoder.decode(p.opus) for p in opus_audio])
    stereo = np.frombuffer(b"".join(p.pcm for p in pcm_audio), "<i2").astype(np.float32) / 32767
    heard_pcm = stereo[0::2]
    wer_pcm = jiwer.wer(WORDS, _words(transcribe(whisper, heard_pcm, 48000)))
    wer_opus = jiwer.wer(WORDS, _words(transcribe(whisper, heard_opus, 48000)))
    assert wer_opus <= wer_pcm + 0.02, (wer_pcm, wer_opus)
    # What crossed the socket: Opus at the bridge's 64 kbit/s vs 48 kHz float32 (1.5 Mbit/s).
    opus_bytes = sum(len(p.opus) for p in opus_audio)
    assert opus_bytes < len(opus_audio) * 960 * 4 / 12
