"""StreamSource on its own: conversion, the read() contract, end, abort and backpressure."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from bots.discord.source import FRAME_BYTES, SILENCE, StreamSource, to_discord_pcm


def tone(seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(48000 * seconds), dtype=np.float32) / 48000
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_conversion_is_clipped_16_bit_stereo() -> None:
    pcm = to_discord_pcm(np.array([0.0, 0.5, -0.5, 2.0, -3.0, np.nan], dtype=np.float32))
    values = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    assert values[:, 0].tolist() == values[:, 1].tolist()  # the same sample on both channels
    assert values[:, 0].tolist() == [0, 16384, -16384, 32767, -32767, 0]
    assert len(to_discord_pcm(np.zeros(960, np.float32))) == FRAME_BYTES == 3840


async def test_read_returns_silence_while_open_and_dry_without_waiting() -> None:
    source = StreamSource(prebuffer_seconds=0.0)
    started = time.perf_counter()
    frames = [source.read() for _ in range(50)]
    assert time.perf_counter() - started < 0.5  # never waits (50 frames of real time would be 1 s)
    assert all(frame == SILENCE for frame in frames)
    assert source.stats.priming_frames == 50 and source.stats.underruns == 0


async def test_prebuffer_then_audio_then_underrun_silence_then_end() -> None:
    source = StreamSource(prebuffer_seconds=0.1)
    source.feed(tone(0.06))  # less than the prebuffer: keep waiting
    assert source.read() == SILENCE
    source.feed(tone(0.06))
    audio = [source.read() for _ in range(6)]
    assert all(len(frame) == FRAME_BYTES and frame != SILENCE for frame in audio)
    assert source.read() == SILENCE  # dry while open: silence, counted as an underrun
    assert source.stats.underruns == 1 and source.stats.underrun_frames == 1
    source.feed(tone(0.03))
    source.finish()  # the rest plays (flushed beats the prebuffer), the last frame padded
    last = [source.read() for _ in range(2)]
    assert len(last[0]) == len(last[1]) == FRAME_BYTES
    assert last[1][FRAME_BYTES // 2 :] == bytes(FRAME_BYTES // 2)
    assert source.read() == b""
    assert source.drained


async def test_every_sample_comes_out_once_in_order() -> None:
    source = StreamSource(prebuffer_seconds=0.0)
    pieces = [tone(n / 1000) for n in (7, 20, 33, 1, 250)]
    for piece in pieces:
        source.feed(piece)
    source.finish()
    out = b"".join(iter(source.read, b""))
    expected = to_discord_pcm(np.concatenate(pieces))
    assert out[: len(expected)] == expected
    assert len(out) % FRAME_BYTES == 0 and not any(out[len(expected) :])


async def test_abort_ends_at_once_and_wakes_everyone() -> None:
    source = StreamSource(max_seconds=0.2, low_water_seconds=0.1, prebuffer_seconds=0.0)
    source.feed(tone(0.3))
    assert source.full
    waiter = asyncio.create_task(source.wait_for_room())
    finished = asyncio.create_task(source.wait_finished())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    source.abort()
    assert source.read() == b"" and source.buffered_bytes == 0
    await asyncio.wait_for(asyncio.gather(waiter, finished), 1.0)
    source.feed(tone(0.1))  # late audio is ignored
    assert source.read() == b""


async def test_fail_raises_from_wait_finished() -> None:
    source = StreamSource()
    source.fail(RuntimeError("gone"))
    with pytest.raises(RuntimeError, match="gone"):
        await source.wait_finished()
    assert source.read() == b""


async def test_backpressure_waits_until_the_player_thread_drains_to_low_water() -> None:
    source = StreamSource(max_seconds=0.5, low_water_seconds=0.2, prebuffer_seconds=0.0)
    source.feed(tone(0.5))
    assert source.full
    woke_at: list[float] = []

    async def feeder() -> None:
        await source.wait_for_room()
        woke_at.append(source.buffered_seconds)

    task = asyncio.create_task(feeder())
    await asyncio.sleep(0.05)
    assert not task.done()  # still full: the feeder waits (nothing dropped)

    def player() -> None:  # like AudioPlayer: 20 ms reads from another thread
        for _ in range(20):
            source.read()
            time.sleep(0.002)

    thread = threading.Thread(target=player)
    thread.start()
    await asyncio.wait_for(task, 2.0)
    thread.join()
    assert woke_at and woke_at[0] <= 0.2 + 1e-9
    assert source.stats.reader_waits == 1
    assert source.stats.max_buffered_bytes == int(0.5 * 48000) * 4


async def test_not_full_means_no_wait() -> None:
    source = StreamSource(max_seconds=1.0, low_water_seconds=0.5)
    source.feed(tone(0.2))
    await asyncio.wait_for(source.wait_for_room(), 0.1)
    assert source.stats.reader_waits == 0


async def test_marks_are_checked() -> None:
    with pytest.raises(ValueError):
        StreamSource(max_seconds=1.0, low_water_seconds=1.0)


async def test_jitter_buffer_waits_for_more_audio_but_not_longer_than_its_cap() -> None:
    source = StreamSource(max_seconds=2.0, prebuffer_seconds=0.5, prebuffer_max_wait=0.1)
    source.feed(tone(0.14))  # a streaming TTS's short first chunk
    started = time.perf_counter()
    ready = asyncio.create_task(source.wait_ready())
    await asyncio.sleep(0.02)
    assert not ready.done() and source.read() == SILENCE
    await asyncio.wait_for(ready, 1.0)
    assert 0.08 <= time.perf_counter() - started < 1.0  # waited for the cap, not for the audio
    assert source.read() != SILENCE


async def test_jitter_buffer_starts_at_once_when_enough_audio_is_there() -> None:
    source = StreamSource(max_seconds=2.0, prebuffer_seconds=0.2, prebuffer_max_wait=5.0)
    source.feed(tone(0.3))
    await asyncio.wait_for(source.wait_ready(), 0.05)
    assert source.read() != SILENCE
