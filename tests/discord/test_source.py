"""StreamSource on its own: conversion, the read() contract, end, abort and backpressure.

No test here measures time: "does not wait" is a coroutine that completes without suspending,
and the jitter buffer's cap runs on a fake clock (the module's ``time``, replaced).
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import bots.discord.source as source_module
from bots.discord.source import FRAME_BYTES, SILENCE, StreamSource, to_discord_pcm


def tone(seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(48000 * seconds), dtype=np.float32) / 48000
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


class FakeTime:
    """``perf_counter``/``monotonic`` that move only when told; ``sleep`` refuses to wait."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now

    monotonic = perf_counter

    def sleep(self, seconds: float) -> None:
        raise AssertionError(f"StreamSource slept {seconds} s")


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(source_module, "time", fake)
    return fake


def completes_without_waiting(coroutine) -> bool:
    """Run a coroutine's first step: True if it returned without suspending (it never waited)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return True
    coroutine.close()
    return False


def test_conversion_is_clipped_16_bit_stereo() -> None:
    pcm = to_discord_pcm(np.array([0.0, 0.5, -0.5, 2.0, -3.0, np.nan], dtype=np.float32))
    values = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
    assert values[:, 0].tolist() == values[:, 1].tolist()  # the same sample on both channels
    assert values[:, 0].tolist() == [0, 16384, -16384, 32767, -32767, 0]
    assert len(to_discord_pcm(np.zeros(960, np.float32))) == FRAME_BYTES == 3840


async def test_read_returns_silence_while_open_and_dry_without_waiting(fake_time: FakeTime) -> None:
    source = StreamSource(prebuffer_seconds=0.0)
    # The clock stands still and sleeping fails: a read that waited for audio would hang or fail.
    frames = [source.read() for _ in range(50)]
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
    await asyncio.sleep(0)  # both run up to their wait
    assert not waiter.done() and not finished.done()
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
    await asyncio.sleep(0)  # the feeder runs up to its wait
    assert not task.done() and source.stats.reader_waits == 1  # still full: it waits (nothing dropped)

    def player() -> None:  # like AudioPlayer: 20 ms reads from another thread
        for _ in range(20):
            source.read()
            time.sleep(0.002)

    thread = threading.Thread(target=player)
    thread.start()
    await asyncio.wait_for(task, 30.0)
    thread.join()
    assert woke_at and woke_at[0] <= 0.2 + 1e-9
    assert source.stats.reader_waits == 1
    assert source.stats.max_buffered_bytes == int(0.5 * 48000) * 4


async def test_not_full_means_no_wait() -> None:
    source = StreamSource(max_seconds=1.0, low_water_seconds=0.5)
    source.feed(tone(0.2))
    assert completes_without_waiting(source.wait_for_room())
    assert source.stats.reader_waits == 0


async def test_marks_are_checked() -> None:
    with pytest.raises(ValueError):
        StreamSource(max_seconds=1.0, low_water_seconds=1.0)


async def test_jitter_buffer_waits_for_more_audio_but_not_longer_than_its_cap(fake_time: FakeTime) -> None:
    source = StreamSource(max_seconds=2.0, prebuffer_seconds=0.5, prebuffer_max_wait=0.25)
    source.feed(tone(0.14))  # a streaming TTS's short first chunk
    ready = asyncio.create_task(source.wait_ready())
    await asyncio.sleep(0)
    assert not ready.done() and source.read() == SILENCE  # less than the prebuffer: it waits
    fake_time.now += 0.125
    assert source.read() == SILENCE and source.stats.priming_frames == 2
    fake_time.now += 0.125  # the cap since the first audio: play what is there
    assert source.read() != SILENCE
    # wait_ready's own timer (the event loop's clock) ends the wait too, without more audio.
    await asyncio.wait_for(ready, 30.0)
    # Asked after the cap has passed, it does not wait at all.
    late = StreamSource(max_seconds=2.0, prebuffer_seconds=0.5, prebuffer_max_wait=0.25)
    late.feed(tone(0.14))
    fake_time.now += 0.25
    assert completes_without_waiting(late.wait_ready())


async def test_jitter_buffer_ends_its_wait_when_enough_audio_arrives(fake_time: FakeTime) -> None:
    source = StreamSource(max_seconds=2.0, prebuffer_seconds=0.5, prebuffer_max_wait=60.0)
    source.feed(tone(0.14))
    ready = asyncio.create_task(source.wait_ready())
    await asyncio.sleep(0)
    assert not ready.done()
    source.feed(tone(0.4))  # now past the prebuffer
    await asyncio.wait_for(ready, 30.0)  # long before its 60 s cap
    assert source.read() != SILENCE


async def test_jitter_buffer_starts_at_once_when_enough_audio_is_there() -> None:
    source = StreamSource(max_seconds=2.0, prebuffer_seconds=0.2, prebuffer_max_wait=5.0)
    source.feed(tone(0.3))
    assert completes_without_waiting(source.wait_ready())
    assert source.read() != SILENCE
