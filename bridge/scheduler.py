"""Which piece of model work runs next, for all sessions together: earliest deadline first.

Every piece of model work (a Piper decoder chunk, a voice block, the tail of an utterance) is
small, so a worker that finishes one can take whatever became most urgent meanwhile: the pieces
are the preemption units. Each piece carries a deadline, the moment its session's listener
would run out of audio (:class:`bridge.listener.ListenerClock`), or, for an utterance's first
audio, the moment its first-audio target runs out. A session whose listener has seconds
buffered therefore yields to one about to run dry, instead of all sessions taking turns in the
order they asked (a FIFO pool serves a listener with 0.3 s left after one with 4 s).

Overload (more admitted than the cores can carry) stays fair under this rule: the session that
is furthest behind always goes first, so every listener is a little late rather than some
starving while others stay clean. Gaps are steered to where speech pauses anyway: the first
piece of a segment that follows another (the listener is at a sentence or clause end) has its
deadline moved ``boundary_grace`` later, so work inside a word goes before it when both are late.
Only for a listener that is late: it has less than the grace left when the piece is asked for,
or it has already run dry in this utterance (the machine is behind). A listener that is neither
may well be served in time, and moving its deadline would only let work with more slack overtake
it and make a gap, at a pause but for nothing.

Many utterances starting at the same moment are the one load this rule cannot spread by itself:
each needs its first audio and, within the short first fragment's length, the next segment's
encoding and first chunks, all at once, and on a small machine that start-up work exceeds the
cores for a second or so even when the steady load fits easily. :class:`StartSlots` spaces the
first-audio deadlines of starts beyond a burst, so the listeners already speaking keep their
turn and the later starts come a little later, instead of every listener stalling together.

Pure: no threads, no clock reads (``now`` is passed in); :mod:`bridge.workers` runs it.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bridge.listener import ListenerClock

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """How deadlines are set (seconds)."""

    #: An utterance's first audio is due this long after its first segment was cut.
    first_audio_target: float = 0.1
    #: A segment's first piece, when audio of its utterance is already out and its listener is
    #: late (less than this left, or it ran dry before), may be this much later than the listener
    #: running dry: a gap there falls at a sentence or clause end.
    boundary_grace: float = 0.15

    #: What a segment's first step is taken to last before this session has measured one (the
    #: encoder, the first flow piece and the first decoder chunk: tens of milliseconds).
    start_step_seconds: float = 0.05

    def deadline(
        self,
        listener: ListenerClock,
        now: float,
        *,
        cut_at: float | None = None,
        segment_start: bool = False,
        lasts: float = 0.0,
    ) -> float:
        """The deadline of a session's next piece of work.

        Before the utterance's first audio: ``cut_at`` (when its first segment was cut; ``now``
        if unknown) plus the first-audio target. After it: when the listener runs dry, plus the
        boundary grace for a segment's first piece if the listener is late: less than the grace
        left at ``now``, or it ran dry before (a gap is then likely, and better at the pause than
        inside a word). ``lasts``: how long the piece is expected to run; once the listener plays,
        the deadline is that much earlier, the latest moment the piece can start and still be in
        time (a long piece must not be begun just before the listener runs dry).
        """
        runs_dry = listener.runs_dry_at
        if runs_dry is None:
            return (now if cut_at is None else cut_at) + self.first_audio_target
        if segment_start and (runs_dry - now < self.boundary_grace or listener.starved_seconds > 0):
            runs_dry += self.boundary_grace
        return runs_dry - max(0.0, lasts)


class StartSlots:
    """When each utterance's first audio is due, for starts arriving faster than the machine can
    begin them: the first ``burst`` at once at the time they ask for, each next one ``spacing``
    seconds after the last (a generic cell rate algorithm; ``spacing`` is given per call, so it
    can follow a measured cost). Starts that come spread out are never delayed."""

    def __init__(self, burst: int) -> None:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.burst = burst
        #: When the next start would be due if there were no burst allowance.
        self._next = -math.inf

    def slot(self, wanted: float, spacing: float) -> float:
        """The first-audio deadline of a start that wants ``wanted``: ``wanted`` itself, or
        later while more than ``burst`` starts fall within the last ``burst × spacing``."""
        spacing = max(0.0, spacing)
        due = max(wanted, self._next - (self.burst - 1) * spacing)
        self._next = max(due, self._next) + spacing
        return due


@dataclass(order=True)
class _Entry(Generic[T]):
    deadline: float
    seq: int
    item: T = field(compare=False)
    live: bool = field(default=True, compare=False)


class Ticket:
    """A handle on submitted work, to withdraw it before it runs."""

    __slots__ = ("_entry",)

    def __init__(self, entry: _Entry) -> None:  # type: ignore[type-arg]
        self._entry = entry

    @property
    def deadline(self) -> float:
        return self._entry.deadline


class DeadlineScheduler(Generic[T]):
    """Work waiting for a worker, taken earliest deadline first (ties: first submitted)."""

    def __init__(self) -> None:
        self._heap: list[_Entry[T]] = []
        self._seq = itertools.count()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def submit(self, item: T, deadline: float) -> Ticket:
        entry = _Entry(deadline, next(self._seq), item)
        heapq.heappush(self._heap, entry)
        self._live += 1
        return Ticket(entry)

    def withdraw(self, ticket: Ticket) -> bool:
        """Take back work not yet handed out; False when it was already taken or withdrawn."""
        entry = ticket._entry
        if not entry.live:
            return False
        entry.live = False
        self._live -= 1
        return True

    def peek_deadline(self) -> float | None:
        """The most urgent deadline waiting (None: nothing waits)."""
        self._drop_dead()
        return self._heap[0].deadline if self._heap else None

    def pop(self) -> T | None:
        """The most urgent work (None: nothing waits)."""
        self._drop_dead()
        if not self._heap:
            return None
        entry = heapq.heappop(self._heap)
        entry.live = False
        self._live -= 1
        return entry.item

    def _drop_dead(self) -> None:
        while self._heap and not self._heap[0].live:
            heapq.heappop(self._heap)
