"""A listener playing a stream in real time from its first byte: where does it run dry?"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlaybackReport:
    underruns: int
    underrun_ms: float
    audio_seconds: float
    #: Wall time when the listener hears the last sample (None: nothing arrived).
    ends_at: float | None = None
    #: Each underrun as (where in the audio it happened, seconds from the start; its length, ms).
    stalls: tuple[tuple[float, float], ...] = ()


def simulate_playback(
    arrivals: list[tuple[float, int]], rate: int = 48_000, *, prebuffer_s: float = 0.0, min_gap_ms: float = 1.0
) -> PlaybackReport:
    """``arrivals``: (wall time in s, samples) per received frame, in order.

    Playback starts ``prebuffer_s`` after the first frame arrives and consumes ``rate`` samples
    per second. When the next frame is not there by the time the buffer runs out, playback
    stalls until it arrives: that is an underrun (gaps under ``min_gap_ms`` are timer noise).
    """
    if not arrivals:
        return PlaybackReport(0, 0.0, 0.0, None)
    runs_out = arrivals[0][0] + prebuffer_s  # wall time when buffered audio is exhausted
    underruns = 0
    stalled = 0.0
    total = 0
    stalls: list[tuple[float, float]] = []
    for when, samples in arrivals:
        if when > runs_out:
            gap = when - runs_out
            if gap * 1000 >= min_gap_ms:
                underruns += 1
                stalled += gap
                stalls.append((round(total / rate, 3), round(gap * 1000, 1)))
            runs_out = when
        runs_out += samples / rate
        total += samples
    return PlaybackReport(underruns, round(stalled * 1000, 1), total / rate, runs_out, tuple(stalls))
