"""The ``discord.AudioSource`` that plays the bridge's stream.

discord.py's ``AudioPlayer`` thread calls :meth:`StreamSource.read` every 20 ms and sends
whatever it returns; a short or empty read ends playback. So ``read`` must never wait on the
network: it takes one frame from a bounded buffer that the event loop fills.

* A small jitter buffer: playback starts (and resumes after an underrun) once ``prebuffer``
  audio is buffered, or ``prebuffer_max_wait`` after audio first arrived, whichever is first.
  A streaming TTS sends a short first chunk and a much longer second one; starting on the first
  alone often means a gap right after the first syllable. The wait is capped, so it costs at
  most ``prebuffer_max_wait`` of latency.
* While the utterance is open and the buffer is dry, ``read`` returns a frame of silence:
  playback goes on (ending it would make the next words start a new player, with a click and
  Discord's speaking indicator flapping), and the jitter buffer fills again before playing, so
  a slow stretch becomes one pause instead of a stutter.
* After :meth:`finish` (the bridge's ``flushed``) it plays what is left, the last frame padded
  with zeros, then returns ``b''``: playback ends right after the last sample.
* :meth:`abort` (stop, interrupt) empties the buffer at once; the next ``read`` returns ``b''``.
* Backpressure: :meth:`feed` never drops audio. The feeder awaits :meth:`wait_for_room` once
  the buffer holds ``max_seconds``; it is woken from the player thread when the buffer falls
  below ``low_water_seconds``. Meanwhile nothing reads the bridge's WebSocket, so the pressure
  travels back to the server, which pauses synthesis.

Samples arrive as 48 kHz float32 mono and are converted on arrival (on the event loop, cheap
numpy) to what Discord wants: 16-bit little-endian stereo, clipped, 3 840 bytes per 20 ms. The
player thread only slices bytes under a lock, so it holds the GIL for microseconds.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from dataclasses import dataclass
from typing import Any

import discord
import numpy as np

from bots.discord.settings import default_of
from bridge.audio.formats import BYTES_PER_SAMPLE, to_s16

SAMPLE_RATE = 48_000
CHANNELS = 2
FRAME_SAMPLES = 960  # 20 ms
#: Discord's PCM: 16-bit little-endian, interleaved stereo.
BYTES_PER_SECOND = SAMPLE_RATE * CHANNELS * BYTES_PER_SAMPLE["s16le"]
FRAME_BYTES = FRAME_SAMPLES * CHANNELS * BYTES_PER_SAMPLE["s16le"]  # 3 840
SILENCE = bytes(FRAME_BYTES)


def to_discord_pcm(samples: np.ndarray) -> bytes:
    """48 kHz float32 mono → 16-bit LE interleaved stereo, clipped to [-1, 1] (NaN → 0)."""
    return np.repeat(to_s16(samples), CHANNELS).tobytes()


@dataclass
class SourceStats:
    """What happened to one source, for logs, tests and the benchmark."""

    fed_bytes: int = 0
    audio_frames: int = 0  # frames of real audio returned by read()
    priming_frames: int = 0  # silence returned before the first audio
    underrun_frames: int = 0  # silence returned after the first audio (buffer dry)
    underruns: int = 0  # distinct dry spells after the first audio
    max_buffered_bytes: int = 0
    reader_waits: int = 0  # times the feeder had to wait for room
    first_audio_read: float | None = None  # perf_counter of the first read() that returned audio
    first_underrun: float | None = None  # perf_counter of the first dry read after the first audio
    last_audio_read: float | None = None
    finished_at: float | None = None
    aborted_at: float | None = None


class StreamSource(discord.AudioSource):
    """A bounded, thread-safe PCM buffer that discord.py's player reads 20 ms at a time.

    Event-loop side: :meth:`feed`, :meth:`wait_for_room`, :meth:`finish`, :meth:`fail`,
    :meth:`abort`, :meth:`wait_ready`, :meth:`wait_finished`. Player-thread side: :meth:`read`,
    :meth:`cleanup`.
    """

    def __init__(
        self,
        *,
        max_seconds: float = default_of("buffer_seconds"),
        low_water_seconds: float = default_of("low_water_seconds"),
        prebuffer_seconds: float = default_of("prebuffer_ms") / 1000,
        prebuffer_max_wait: float = default_of("prebuffer_max_wait_ms") / 1000,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # Plain state first: cleanup() (also run by AudioSource.__del__) must always work.
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._offset = 0  # bytes of _buffer already read (compacted lazily)
        self._room: asyncio.Event | None = None  # set when the feeder may go on
        self._priming = True
        self._audio_since: float | None = None  # when the buffer last went from empty to not
        self._finished = False  # no more audio will come (flushed)
        self._aborted = False
        self._played_out = False  # read() reached the end of a finished stream
        self._released = False  # the player is done with it (cleanup)
        self._error: BaseException | None = None
        if not 0 <= low_water_seconds < max_seconds:
            raise ValueError("low_water_seconds must be in [0, max_seconds)")
        self.max_bytes = max(2 * FRAME_BYTES, _frames_bytes(max_seconds))
        self.low_water_bytes = min(_frames_bytes(low_water_seconds), self.max_bytes - FRAME_BYTES)
        # At least one frame: playing starts (and resumes after an underrun) with real audio.
        self.prebuffer_bytes = max(FRAME_BYTES, min(_frames_bytes(prebuffer_seconds), self.max_bytes))
        self.prebuffer_max_wait = prebuffer_max_wait
        self.loop = loop or asyncio.get_running_loop()
        self.stats = SourceStats()
        self._ready = asyncio.Event()  # enough to start playing, or nothing more will come
        self._arrived = asyncio.Event()  # the first audio (or the end) is here
        self._done = asyncio.Event()  # finished, failed or aborted
        self.last_progress = time.monotonic()

    # ------------------------------------------------------------------ event-loop side
    @property
    def buffered_bytes(self) -> int:
        with self._lock:
            return self._held_bytes()

    @property
    def buffered_seconds(self) -> float:
        return self.buffered_bytes / BYTES_PER_SECOND

    @property
    def full(self) -> bool:
        return self.buffered_bytes >= self.max_bytes

    @property
    def has_audio(self) -> bool:
        return self.stats.fed_bytes > 0

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def aborted(self) -> bool:
        return self._aborted

    @property
    def drained(self) -> bool:
        """Finished and every byte handed to the player."""
        return self._finished and self.buffered_bytes == 0

    @property
    def played_out(self) -> bool:
        """The player read to the end of a finished stream (``read`` returned ``b''`` for it)."""
        return self._played_out

    def feed(self, samples: np.ndarray) -> None:
        """Append 48 kHz float32 mono audio. Never drops; the caller waits for room if :attr:`full`."""
        if self._aborted or self._finished or self._released:
            return
        pcm = to_discord_pcm(samples)
        now = time.perf_counter()
        with self._lock:
            if len(self._buffer) == self._offset:
                self._audio_since = now
            self._buffer += pcm
            buffered = len(self._buffer) - self._offset
        self.stats.fed_bytes += len(pcm)
        self.stats.max_buffered_bytes = max(self.stats.max_buffered_bytes, buffered)
        self.last_progress = time.monotonic()
        self._arrived.set()
        if buffered >= self.prebuffer_bytes:
            self._ready.set()

    def _held_bytes(self) -> int:
        """Audio waiting to be read (call with the lock held)."""
        return len(self._buffer) - self._offset

    async def wait_for_room(self) -> None:
        """Return once the buffer is below the low-water mark (at once if it is not full)."""
        with self._lock:
            if self._aborted or self._released or self._held_bytes() < self.max_bytes:
                return
            self._room = room = asyncio.Event()
        self.stats.reader_waits += 1
        await room.wait()

    def finish(self) -> None:
        """No more audio: play out what is buffered, then end."""
        self._finished = True
        self.stats.finished_at = time.perf_counter()
        self.last_progress = time.monotonic()
        self._arrived.set()
        self._ready.set()
        self._done.set()

    def fail(self, error: BaseException) -> None:
        """The stream broke (bridge lost): end like :meth:`abort` and let :meth:`wait_finished` raise."""
        self._error = error
        self.abort()

    def abort(self) -> None:
        """Stop now: drop everything buffered; the next :meth:`read` returns ``b''``."""
        with self._lock:
            self._aborted = True
            self._buffer = bytearray()
            self._offset = 0
            room, self._room = self._room, None
        if self.stats.aborted_at is None:
            self.stats.aborted_at = time.perf_counter()
        if room is not None:
            room.set()
        self._arrived.set()
        self._ready.set()
        self._done.set()

    async def wait_ready(self) -> None:
        """Until playback should start: ``prebuffer`` audio is here, or ``prebuffer_max_wait``
        has passed since the first audio, or the stream has ended."""
        await self._arrived.wait()
        since = self._audio_since
        left = self.prebuffer_max_wait - (time.perf_counter() - since) if since is not None else 0.0
        if left > 0 and not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), left)
            except TimeoutError:
                pass

    async def wait_finished(self) -> None:
        """Until the bridge has sent everything (or the stream was aborted); raises a :meth:`fail` error."""
        await self._done.wait()
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------------ player-thread side
    def read(self) -> bytes:
        """One 20 ms frame (3 840 bytes); silence while waiting for audio; ``b''`` at the end."""
        wake: asyncio.Event | None = None
        with self._lock:
            if self._aborted:
                return b""
            available = len(self._buffer) - self._offset
            if self._priming:
                waited = self._audio_since is not None and (
                    time.perf_counter() - self._audio_since >= self.prebuffer_max_wait
                )
                if (
                    available >= self.prebuffer_bytes
                    or (self._finished and available)
                    or (waited and available >= FRAME_BYTES)
                ):
                    self._priming = False
                elif self._finished:
                    self._played_out = True
                    return b""
                else:
                    self._count_silence()
                    return SILENCE
            if available >= FRAME_BYTES:
                start = self._offset
                frame = bytes(self._buffer[start : start + FRAME_BYTES])
                self._offset += FRAME_BYTES
            elif self._finished:
                if not available:
                    self._played_out = True
                    return b""
                frame = bytes(self._buffer[self._offset :]) + bytes(FRAME_BYTES - available)
                self._offset = len(self._buffer)
            else:
                self._priming = True  # dry while open: silence, then gather prebuffer again
                self.stats.underruns += 1
                if self.stats.first_underrun is None:
                    self.stats.first_underrun = time.perf_counter()
                self._count_silence()
                return SILENCE
            if self._offset >= 1 << 16 and self._offset * 2 >= len(self._buffer):
                del self._buffer[: self._offset]
                self._offset = 0
            remaining = len(self._buffer) - self._offset
            if self._room is not None and remaining <= self.low_water_bytes:
                wake, self._room = self._room, None
            self._count_audio()
        if wake is not None:
            _set_threadsafe(self.loop, wake)
        return frame

    def _count_audio(self) -> None:
        now = time.perf_counter()
        if self.stats.first_audio_read is None:
            self.stats.first_audio_read = now
        self.stats.last_audio_read = now
        self.stats.audio_frames += 1

    def _count_silence(self) -> None:
        if self.stats.first_audio_read is None:
            self.stats.priming_frames += 1
        else:
            self.stats.underrun_frames += 1

    def is_opus(self) -> bool:
        return False

    def cleanup(self) -> None:
        """Called by the player when it ends: release the buffer and wake a waiting feeder."""
        with self._lock:
            self._buffer = bytearray()
            self._offset = 0
            room, self._room = self._room, None
            self._released = True
        if room is not None:
            _set_threadsafe(self.loop, room)


#: What discord.py sends for silence: an Opus frame of nothing (3 bytes).
OPUS_SILENCE = b"\xf8\xff\xfe"


class OpusStreamSource(StreamSource):
    """The same jitter buffer, holding the bridge's 20 ms Opus packets instead of PCM.

    ``is_opus()`` is True, so discord.py's player sends each packet as it is (no encoder in the
    bot). Sizes are counted as the PCM the packets stand for (one frame, 3 840 bytes, each), so
    every threshold and statistic means what it means for :class:`StreamSource`. Silence while
    priming or dry is Discord's Opus silence frame. The bridge pads an utterance's last packet
    to 20 ms, so every packet is a whole frame.
    """

    def __init__(self, **options: Any) -> None:
        self._packets: collections.deque[bytes] = collections.deque()
        super().__init__(**options)
        #: Bytes of Opus fed (the PCM they stand for is in stats.fed_bytes).
        self.opus_bytes = 0

    def _held_bytes(self) -> int:
        return len(self._packets) * FRAME_BYTES

    def feed(self, samples: np.ndarray) -> None:
        raise TypeError("an Opus source takes packets: feed_packet()")

    def feed_packet(self, packet: bytes) -> None:
        """Append one 20 ms Opus packet. Never drops; the caller waits for room if :attr:`full`."""
        if self._aborted or self._finished or self._released:
            return
        now = time.perf_counter()
        with self._lock:
            if not self._packets:
                self._audio_since = now
            self._packets.append(bytes(packet))
            buffered = self._held_bytes()
        self.opus_bytes += len(packet)
        self.stats.fed_bytes += FRAME_BYTES
        self.stats.max_buffered_bytes = max(self.stats.max_buffered_bytes, buffered)
        self.last_progress = time.monotonic()
        self._arrived.set()
        if buffered >= self.prebuffer_bytes:
            self._ready.set()

    def read(self) -> bytes:
        """One Opus packet; Opus silence while waiting for audio; ``b''`` at the end."""
        wake: asyncio.Event | None = None
        with self._lock:
            if self._aborted:
                return b""
            available = self._held_bytes()
            if self._priming:
                waited = self._audio_since is not None and (
                    time.perf_counter() - self._audio_since >= self.prebuffer_max_wait
                )
                if available >= self.prebuffer_bytes or (self._finished and available) or (waited and available):
                    self._priming = False
                elif self._finished:
                    self._played_out = True
                    return b""
                else:
                    self._count_silence()
                    return OPUS_SILENCE
            if self._packets:
                packet = self._packets.popleft()
            elif self._finished:
                self._played_out = True
                return b""
            else:
                self._priming = True  # dry while open: silence, then gather prebuffer again
                self.stats.underruns += 1
                if self.stats.first_underrun is None:
                    self.stats.first_underrun = time.perf_counter()
                self._count_silence()
                return OPUS_SILENCE
            if self._room is not None and self._held_bytes() <= self.low_water_bytes:
                wake, self._room = self._room, None
            self._count_audio()
        if wake is not None:
            _set_threadsafe(self.loop, wake)
        return packet

    def abort(self) -> None:
        with self._lock:
            self._packets.clear()
        super().abort()

    def cleanup(self) -> None:
        with self._lock:
            self._packets.clear()
        super().cleanup()

    def is_opus(self) -> bool:
        return True


def _frames_bytes(seconds: float) -> int:
    """Bytes in ``seconds`` of Discord PCM, rounded down to whole frames."""
    return int(round(seconds * 50)) * FRAME_BYTES


def _set_threadsafe(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    try:
        loop.call_soon_threadsafe(event.set)
    except RuntimeError:  # the loop is closed (shutdown): nobody is waiting any more
        pass
