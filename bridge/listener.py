"""Where a real-time listener is in one utterance's audio: the one listener clock.

The model is the benchmark's playback model (``benchmarks/playback.py``): the listener starts
playing at the utterance's first sample, plays in real time, and when it runs out of audio it
waits and resumes with the next sample that arrives. The server cannot hear the client, so this
is an estimate from what it handed out and when; it is what the deadline scheduler orders work
by and what the voice stage's block pacing sizes blocks by, so both agree on one clock.

Pure: no clock reads, time is passed in (seconds on any monotonic scale, the same for all calls).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ListenerClock:
    """The listener of one utterance (restart it for the next)."""

    #: When the listener runs out of the audio handed out so far; None: nothing handed out yet.
    runs_dry_at: float | None = None
    #: Seconds of audio handed out in this utterance.
    handed_seconds: float = 0.0
    #: Seconds the listener spent waiting for audio after its first sample (gaps it heard).
    starved_seconds: float = 0.0

    def restart(self) -> None:
        """A new utterance: nothing buffered, nothing handed out."""
        self.runs_dry_at = None
        self.handed_seconds = 0.0
        self.starved_seconds = 0.0

    @property
    def started(self) -> bool:
        """Whether audio of this utterance has been handed out (the listener is playing)."""
        return self.runs_dry_at is not None

    def handed(self, seconds: float, now: float) -> None:
        """``seconds`` of audio went to the listener at ``now``."""
        if seconds <= 0:
            return
        if self.runs_dry_at is None:
            start = now
        elif self.runs_dry_at < now:  # it ran dry and waited: it plays this from now
            self.starved_seconds += now - self.runs_dry_at
            start = now
        else:
            start = self.runs_dry_at
        self.runs_dry_at = start + seconds
        self.handed_seconds += seconds

    def buffered(self, now: float) -> float:
        """Audio the listener still has at ``now`` (0 before the first sample and once dry)."""
        if self.runs_dry_at is None:
            return 0.0
        return max(0.0, self.runs_dry_at - now)
