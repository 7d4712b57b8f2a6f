"""End to end, offline, with real parts: discord.py's AudioPlayer thread and the real Opus
encoder (RecordingVoiceClient), the real bridge server on loopback, the fake streaming LLM.

Pacing is asserted by order and counts, never in milliseconds (the machine is shared and
loaded): discord.py's player sends one frame per tick of its 20 ms schedule, so "steady, no gap"
is every tick sending the next frame and the source never inserting silence. The intervals
themselves are a figure: ``python -m benchmarks.discord_latency`` records them.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from discord.player import AudioPlayer

from bridge.server import STATE
from bots.discord.link import CLIENT_QUEUE_FRAMES
from bots.discord.source import FRAME_BYTES
from bots.discord.testing import Packet, Script, word_tokens
from tests.discord.conftest import padded, say, speak

REPLY = (
    "Sure! Tomorrow looks bright and mild, with a light breeze from the west. "
    "Take a jacket for the evening, because it cools down quickly after sunset."
)
TRIP = " ".join(
    [
        "On Monday you fly to Lisbon, and the flight leaves at eight in the morning.",
        "On Tuesday you take the train to Porto, which takes about three hours.",
        "On Wednesday there is a guided tour of the old town and the river.",
        "On Thursday you are free to explore the wine cellars on your own.",
    ]
)


def pcm_packets(packets: list[Packet], since: float = 0.0) -> list[Packet]:
    return [p for p in packets if p.pcm is not None and p.time >= since]


def assert_played_exactly(packets: list[Packet], fed: bytes, stats) -> None:
    """The player sent exactly what the source was fed, in order, plus only the silence frames
    the source reports inserting (jitter buffer filling up on a loaded machine)."""
    played = b"".join(p.pcm for p in packets)
    inserted = stats.priming_frames + stats.underrun_frames
    assert len(played) == len(padded(fed)) + inserted * FRAME_BYTES
    audible = np.frombuffer(played, "<i2")
    expected = np.frombuffer(padded(fed), "<i2")
    assert np.array_equal(audible[audible != 0], expected[expected != 0])


async def wait_until(predicate, timeout: float = 30.0, step: float = 0.02) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        assert time.perf_counter() < deadline, "condition not reached in time"
        await asyncio.sleep(step)


def server_session(running, link):
    return running.app[STATE].sessions[link.session_id]


@pytest.mark.parametrize(
    "jitter_buffer",
    [
        # What users get (200 ms, playback starting at most 100 ms after the first audio). On the
        # 2-core machine it never ran dry in 20 runs, nor in 5 with both cores kept busy by two
        # spinning processes: the bridge stayed at least 250 ms ahead of the player throughout.
        pytest.param({}, id="default"),
        # A generous one: playback starts only once a second of audio is here (or after 1 s).
        pytest.param({"prebuffer_ms": 1000, "prebuffer_max_wait_ms": 1000}, id="1s"),
    ],
)
async def test_steady_20ms_pacing_and_no_gap_after_first_audio(
    server, session_factory, fake_llm, fed_log, replies, jitter_buffer
) -> None:
    fake_llm.script = Script(tokens=word_tokens(REPLY), rate=70)
    session, vc = await session_factory(server.ws_url, **jitter_buffer)
    note, done = await session.submit(speak("What's the weather tomorrow?", replies))
    assert note is None
    report = await asyncio.wait_for(done, 60)
    assert report.outcome == "done", report.error
    assert replies.messages == [REPLY]  # the text is posted too

    stats = report.source
    packets = pcm_packets(vc.snapshot())
    # Playback started with audio and never ran dry: no silence between first audio and the end.
    assert stats.priming_frames == 0 and stats.underrun_frames == 0
    # Every sample the bridge sent was played, once, in order; nothing else was.
    assert b"".join(p.pcm for p in packets) == padded(fed_log.of(stats))
    assert len(packets) == stats.audio_frames > 150  # several seconds of speech

    # Paced by the player's schedule: tick n goes out at start + n × DELAY (a late tick is
    # followed by quicker ones, never by drift), DELAY being one 20 ms frame. Each tick sent the
    # next frame, from the first to the last: none skipped, none doubled, no pause in between.
    assert AudioPlayer.DELAY == FRAME_BYTES / (48000 * 2 * 2) == 0.02
    assert [p.tick for p in packets] == list(range(len(packets)))


async def test_flush_ends_playback_right_after_the_last_sample(server, session_factory, fed_log) -> None:
    session, vc = await session_factory(server.ws_url)
    note, done = await session.submit(say("Short and sweet."))
    report = await asyncio.wait_for(done, 60)
    assert report.outcome == "done"
    packets = vc.snapshot()
    audio = pcm_packets(packets)
    assert_played_exactly(audio, fed_log.of(report.source), report.source)
    # After the last audio frame: only the player's own end-of-stream Opus silence, no PCM, sent
    # on the player's next tick (its read() returned b'' at once).
    tail = packets[packets.index(audio[-1]) + 1 :]
    assert len(tail) == 5 and all(p.pcm is None for p in tail)
    assert [p.tick for p in audio] == list(range(len(audio)))
    assert all(p.tick == audio[-1].tick + 1 for p in tail)  # the very next tick
    # ... and the session learnt it (the `after` callback, through the event loop), afterwards.
    assert report.playback_ended is not None and report.playback_ended >= tail[-1].time
    assert report.source.finished_at is not None and report.source.finished_at < audio[-1].time


async def test_stop_silences_within_one_frame_and_the_server_stops_synthesizing(
    server, session_factory, fed_log
) -> None:
    session, vc = await session_factory(server.ws_url)
    note, done = await session.submit(say(TRIP))
    await wait_until(lambda: len(pcm_packets(vc.snapshot())) >= 25)  # half a second in
    remote = server_session(server, session.link)
    stopped_at = time.perf_counter()
    assert await session.stop() == "Stopped."
    report = await asyncio.wait_for(done, 5)
    assert report.outcome == "interrupted"
    player = vc._player  # noqa: SLF001
    await wait_until(lambda: player is None or not player.is_alive())  # it has sent all it will send
    late = pcm_packets(vc.snapshot(), since=stopped_at)
    assert len(late) <= 1  # at most the frame the player had already read
    # The server dropped its queue and stopped the model work.
    await wait_until(lambda: not remote.pipeline.busy and remote.pipeline.output.samples == 0, timeout=30)
    assert remote.pipeline.clock.samples == 0
    assert not vc.is_playing()

    # The next utterance starts cleanly: only its own audio is played.
    vc.clear()
    note, done = await session.submit(say("Next one."))
    report = await asyncio.wait_for(done, 60)
    assert report.outcome == "done"
    assert_played_exactly(pcm_packets(vc.snapshot()), fed_log.of(report.source), report.source)


async def test_backpressure_bounds_memory_and_pauses_the_server(server_factory, session_factory, fed_log) -> None:
    running = await server_factory(output_queue_seconds=1.0)
    session, vc = await session_factory(running.ws_url, buffer_seconds=1.0, low_water_seconds=0.5)
    note, done = await session.submit(say(" ".join([TRIP] * 3)))  # about 100 s of speech
    await wait_until(lambda: len(pcm_packets(vc.snapshot())) >= 10)
    vc.pause()  # the player stops reading the source
    remote = server_session(running, session.link)
    source = session._current_source  # noqa: SLF001
    assert source is not None

    # The server's synthesis stops: its output queue is full and no new samples appear.
    history: list[int] = []

    def synthesis_stalled() -> bool:
        history.append(remote.pipeline.clock.samples)
        return len(history) > 8 and history[-1] == history[-8] and remote.pipeline.output.samples >= 48000

    await wait_until(synthesis_stalled, timeout=60, step=0.2)
    assert remote.pipeline.busy  # work left: it is paused, not finished
    assert not source.finished
    # Memory in the bot stays bounded: the source at its limit (plus one frame), the client queue capped.
    assert source.stats.max_buffered_bytes <= source.max_bytes + FRAME_BYTES
    assert session.link._client._queue.qsize() <= CLIENT_QUEUE_FRAMES  # noqa: SLF001
    assert source.stats.reader_waits >= 1
    paused_at = remote.pipeline.clock.samples

    # Resume: the buffer drains below the low-water mark, reading resumes, synthesis goes on.
    underruns = source.stats.underrun_frames  # (a slow start on a loaded machine may have had one)
    vc.resume()
    await wait_until(lambda: remote.pipeline.clock.samples > paused_at, timeout=30)
    assert source.stats.underrun_frames == underruns  # reading resumed in time: never ran dry
    await session.stop()
    report = await asyncio.wait_for(done, 5)
    # Nothing was dropped: what was played is exactly the start of what was fed.
    played = np.frombuffer(b"".join(p.pcm for p in pcm_packets(vc.snapshot())), "<i2")
    fed = np.frombuffer(fed_log.of(report.source), "<i2")
    played, fed = played[played != 0], fed[fed != 0]  # without the silence frames of underruns
    assert played.size > 48000 and np.array_equal(played, fed[: played.size])


async def test_interrupt_policy_cuts_the_reply_and_plays_only_the_new_one(
    server, session_factory, fake_llm, fed_log, replies
) -> None:
    session, vc = await session_factory(server.ws_url, busy_policy="interrupt")
    fake_llm.scripts = [
        Script(tokens=word_tokens(TRIP), rate=12),  # still generating when it is cut
        Script(tokens=word_tokens("Okay, new topic."), rate=70),
    ]
    note, first = await session.submit(speak("Plan my trip.", replies))
    await wait_until(lambda: len(pcm_packets(vc.snapshot())) >= 25)
    assert not fake_llm.requests[0].finished
    cut_at = time.perf_counter()
    note, second = await session.submit(speak("Actually, never mind.", replies))
    assert note is None
    old, new = await asyncio.wait_for(asyncio.gather(first, second), 60)
    assert old.outcome == "interrupted" and new.outcome == "done"
    after_cut = pcm_packets(vc.snapshot(), since=cut_at)
    stale = [p for p in after_cut if p.source.stats is old.source]
    fresh = [p for p in after_cut if p.source.stats is new.source]
    # At most one frame of the old reply after the cut, then exactly the new reply.
    assert len(stale) <= 1 and after_cut == stale + fresh
    assert_played_exactly(fresh, fed_log.of(new.source), new.source)
    assert fake_llm.requests[0].disconnected  # the old generation was stopped too
    assert any("(interrupted)" in m for m in replies.messages)
    assert replies.messages[-1] == "Okay, new topic."
