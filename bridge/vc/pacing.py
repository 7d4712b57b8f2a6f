"""Block sizes that keep a listener fed: each block is converted before the audio already out
has played.

A streaming RVC converter trades latency for throughput through its block size: every block
re-converts ``context`` frames of left context, so small blocks are cheap to wait for but dear
per second of audio. A fixed schedule (a short first block, then doubling) works when
conversion is much faster than real time (a GPU); on a CPU at RTF ≈ 0.6 a doubled block takes
longer to convert than the audio before it lasts, and the listener hears a gap after every
early block. :class:`BlockPacer` instead sizes each block from what it measures: the audio the
listener still has and the cost of a block, modelled as ``rate × (block + context)`` with
``rate`` learned from the blocks converted so far (the content encoder and the text encoder
run over the context too; the decoder over the block). The block is the largest that fits in
``safety`` of the audio left, between ``min_frames`` and ``max_frames``.

The listener is the session's :class:`bridge.listener.ListenerClock`, the same clock the deadline
scheduler orders work by, moved on by whoever hands the audio out (the pipeline). A stream used
on its own, with no session around it, gets a clock of its own that the stream moves on as it
converts (:meth:`BlockPacer.converted_audio`).

Block sizes never change the converted audio (only when it is ready), so pacing keeps the
stream's output exact. Pure apart from the clock, which tests inject.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.listener import ListenerClock
#: Seconds per frame (RVC's 10 ms frames).
FRAME_SECONDS = 0.01


@dataclass
class BlockPacer:
    """Chooses the next block's size (in 10 ms frames, even) for one stream."""

    min_frames: int
    max_frames: int
    context_frames: int
    #: Share of the listener's remaining audio that a block's conversion may take.
    safety: float = 0.8
    #: Sizes below ``max_frames`` are multiples of ``step`` (or ``min_frames``): a few sizes
    #: that warm-up can cover (see ``StreamLayout.step``). 2: any even size.
    step: int = 2
    #: Weight of the newest block in the learned cost rate (exponential average).
    smoothing: float = 0.5
    clock: Callable[[], float] = time.perf_counter
    #: Conversion seconds per frame of window (block + context); None until a block is timed.
    rate: float | None = None
    #: Seconds a block waits for the shared compute slot (other streams' blocks), averaged.
    wait: float = 0.0
    #: The listener's clock; None: one of the pacer's own, moved on by :meth:`converted_audio`.
    listener: ListenerClock | None = None
    _owns_listener: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not 2 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 2 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}")
        if self.step < 2 or self.step % 2:
            raise ValueError(f"step must be an even number of frames >= 2, got {self.step}")
        if not 0 < self.safety <= 1 or not 0 < self.smoothing <= 1:
            raise ValueError("safety and smoothing must be in (0, 1]")
        if self.listener is None:
            self.listener = ListenerClock()
            self._owns_listener = True

    @property
    def clock_listener(self) -> ListenerClock:
        assert self.listener is not None
        return self.listener

    def restart(self) -> None:
        """A new utterance: nothing is buffered at a listener of the pacer's own (the learned
        rate is kept). A session's listener is the session's to restart."""
        if self._owns_listener:
            self.clock_listener.restart()

    def converted(self, window_frames: int, seconds: float, waited: float = 0.0) -> None:
        """A window of ``window_frames`` (block and its left context) took ``seconds`` of model
        work, after ``waited`` seconds for the compute slot. The two are learned apart: the
        work scales with the window, the wait does not (it is other streams' blocks)."""
        observed = max(seconds / max(window_frames, 1), 1e-9)
        waited = max(waited, 0.0)
        if self.rate is None:
            self.rate, self.wait = observed, waited
        else:
            self.rate += self.smoothing * (observed - self.rate)
            self.wait += self.smoothing * (waited - self.wait)

    def converted_audio(self, seconds: float) -> None:
        """The stream converted ``seconds`` of audio now. Moves a listener of the pacer's own
        on (a stream on its own hands its audio out as it converts it); a session's listener
        moves when the session hands the audio out, so this leaves it alone."""
        if self._owns_listener:
            self.clock_listener.handed(seconds, self.clock())

    def buffered_seconds(self) -> float:
        """Audio the listener still has, playing in real time from the first sample."""
        return self.clock_listener.buffered(self.clock())

    @property
    def started(self) -> bool:
        """Whether audio of this utterance went out (the listener is playing)."""
        return self.clock_listener.started

    def seconds_until_due(self, frames: int) -> float:
        """How long a block of ``frames`` may wait before it must be converted, so that it is
        out before the listener runs dry (0: now; also when nothing is known yet)."""
        if not self.started or self.rate is None:
            return 0.0
        cost = self.rate * (frames + self.context_frames) + self.wait
        left = self.buffered_seconds() - cost / self.safety
        return left if left > 1e-6 else 0.0  # within a microsecond: due (float noise)

    def next_frames(self) -> int:
        """The size of the next block."""
        if not self.started or self.rate is None:
            return self.min_frames
        budget = self.safety * self.buffered_seconds() - self.wait
        frames = int(budget / self.rate + 1e-6) - self.context_frames  # 1e-6: float noise
        frames -= frames % 2
        if frames < self.max_frames:
            frames -= frames % self.step
        return max(self.min_frames, min(self.max_frames, frames))
