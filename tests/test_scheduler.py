"""The deadline scheduler: ordering, preemption at piece boundaries and fairness, on a simulated
clock with a fake engine (no threads, no sleeps)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import pytest

from bridge.listener import ListenerClock
from bridge.scheduler import DeadlinePolicy, DeadlineScheduler, StartSlots


# ----------------------------------------------------------------------------- the queue
def test_earliest_deadline_goes_first_and_ties_keep_submission_order() -> None:
    queue: DeadlineScheduler[str] = DeadlineScheduler()
    queue.submit("late", 5.0)
    queue.submit("tie-a", 2.0)
    queue.submit("urgent", 1.0)
    queue.submit("tie-b", 2.0)
    assert len(queue) == 4 and queue.peek_deadline() == 1.0
    assert [queue.pop() for _ in range(4)] == ["urgent", "tie-a", "tie-b", "late"]
    assert queue.pop() is None and len(queue) == 0 and queue.peek_deadline() is None


def test_withdrawn_work_never_runs_and_is_not_counted() -> None:
    queue: DeadlineScheduler[str] = DeadlineScheduler()
    first = queue.submit("a", 1.0)
    queue.submit("b", 2.0)
    assert queue.withdraw(first) and not queue.withdraw(first)
    assert len(queue) == 1 and queue.peek_deadline() == 2.0
    assert queue.pop() == "b"
    taken = queue.submit("c", 3.0)
    assert queue.pop() == "c" and not queue.withdraw(taken)  # already handed out


def test_withdrawing_one_of_several_leaves_the_others_counted() -> None:
    queue: DeadlineScheduler[str] = DeadlineScheduler()
    tickets = [queue.submit(name, d) for name, d in [("a", 1.0), ("b", 2.0), ("c", 3.0)]]
    assert queue.withdraw(tickets[1])
    assert len(queue) == 2 and [queue.pop(), queue.pop()] == ["a", "c"] and len(queue) == 0


def test_work_submitted_later_with_an_earlier_deadline_overtakes() -> None:
    # Preemption happens at piece boundaries: what a worker takes next is the most urgent
    # piece at that moment, whenever it was submitted.
    queue: DeadlineScheduler[str] = DeadlineScheduler()
    queue.submit("relaxed chunk 1", 10.0)
    queue.submit("relaxed chunk 2", 10.0)
    assert queue.pop() == "relaxed chunk 1"
    queue.submit("running dry", 0.3)
    assert queue.pop() == "running dry"
    assert queue.pop() == "relaxed chunk 2"


# ----------------------------------------------------------------------------- the listener
def test_the_listener_plays_in_real_time_from_its_first_sample_and_waits_when_dry() -> None:
    listener = ListenerClock()
    assert not listener.started and listener.buffered(5.0) == 0.0
    listener.handed(0.0, 1.0)  # nothing: not started
    assert not listener.started
    listener.handed(0.5, 10.0)
    listener.handed(0.5, 10.2)  # queued behind the first half second
    assert listener.runs_dry_at == pytest.approx(11.0) and listener.buffered(10.4) == pytest.approx(0.6)
    assert listener.buffered(12.0) == 0.0
    listener.handed(0.2, 11.5)  # it ran dry at 11.0 and waited 0.5 s: plays this from 11.5
    assert listener.runs_dry_at == pytest.approx(11.7)
    assert listener.starved_seconds == pytest.approx(0.5) and listener.handed_seconds == pytest.approx(1.2)
    listener.handed(0.1, 12.0)  # dry again at 11.7, waited 0.3 s: the waits add up
    assert listener.starved_seconds == pytest.approx(0.8)
    listener.restart()
    assert not listener.started and listener.handed_seconds == 0.0 and listener.starved_seconds == 0.0


# ----------------------------------------------------------------------------- deadlines
def test_first_audio_is_due_a_target_after_the_cut_then_when_the_listener_runs_dry() -> None:
    policy = DeadlinePolicy(first_audio_target=0.1, boundary_grace=0.15)
    listener = ListenerClock()
    assert policy.deadline(listener, 50.0, cut_at=49.98) == pytest.approx(50.08)
    assert policy.deadline(listener, 50.0) == pytest.approx(50.1)  # cut time unknown: from now
    listener.handed(2.0, 50.1)
    assert policy.deadline(listener, 51.0, cut_at=49.98) == pytest.approx(52.1)  # the cut no longer matters
    # A segment's first piece, its listener short of audio (0.1 s left): the boundary grace.
    assert policy.deadline(listener, 52.0, segment_start=True) == pytest.approx(52.25)
    # With more than the grace left, it is not late yet: its true deadline.
    assert policy.deadline(listener, 51.0, segment_start=True) == pytest.approx(52.1)
    assert policy.deadline(listener, 51.94, segment_start=True) == pytest.approx(52.1)  # 0.16 s left
    assert policy.deadline(listener, 51.96, segment_start=True) == pytest.approx(52.25)  # 0.14 s left
    # A listener that ran dry before in this utterance is late whatever it has left now.
    listener.handed(1.0, 52.2)  # 0.1 s after it ran dry: it plays until 53.2
    assert listener.starved_seconds == pytest.approx(0.1)
    assert policy.deadline(listener, 52.2, segment_start=True) == pytest.approx(53.35)
    assert policy.deadline(listener, 52.2) == pytest.approx(53.2)  # inside a segment: no grace


def test_a_listener_with_exactly_the_grace_left_is_not_late() -> None:
    policy = DeadlinePolicy(boundary_grace=0.25)  # values exact in binary floating point
    listener = ListenerClock()
    listener.handed(2.5, 0.0)
    assert policy.deadline(listener, 2.25, segment_start=True) == 2.5
    assert policy.deadline(listener, 2.375, segment_start=True) == 2.75


def test_a_piece_expected_to_last_is_due_to_start_that_much_before_the_listener_runs_dry() -> None:
    policy = DeadlinePolicy(first_audio_target=0.1, boundary_grace=0.15)
    listener = ListenerClock()
    # Before the first audio the target stands, whatever the piece lasts.
    assert policy.deadline(listener, 10.0, cut_at=10.0, lasts=0.06) == pytest.approx(10.1)
    listener.handed(1.0, 10.0)
    assert policy.deadline(listener, 10.5, lasts=0.06) == pytest.approx(10.94)
    assert policy.deadline(listener, 10.5, lasts=-1.0) == pytest.approx(11.0)  # never later than dry
    # With the grace (a late listener at a pause): from the moved deadline.
    assert policy.deadline(listener, 10.9, segment_start=True, lasts=0.06) == pytest.approx(11.09)


def test_the_grace_never_lets_work_with_more_slack_overtake_a_boundary_that_is_not_late() -> None:
    # One worker. A is at a sentence end with 0.3 s left; B is inside a sentence with 0.35 s
    # left. A's piece takes 0.1 s, B's 0.25 s: A first feeds both; B first runs A dry for 0.05 s.
    policy = DeadlinePolicy(boundary_grace=0.15)
    at_boundary, inside = ListenerClock(), ListenerClock()
    at_boundary.handed(0.3, 0.0)
    inside.handed(0.35, 0.0)
    queue: DeadlineScheduler[str] = DeadlineScheduler()
    queue.submit("inside", policy.deadline(inside, 0.0))
    queue.submit("at boundary", policy.deadline(at_boundary, 0.0, segment_start=True))
    assert queue.pop() == "at boundary"


def test_a_new_utterance_goes_before_a_listener_with_seconds_left_but_not_before_one_running_dry() -> None:
    policy = DeadlinePolicy(first_audio_target=0.1)
    now = 100.0
    playing_long = ListenerClock()
    playing_long.handed(4.0, now - 0.5)  # 3.5 s left
    about_dry = ListenerClock()
    about_dry.handed(0.55, now - 0.5)  # 0.05 s left
    queue: DeadlineScheduler[str] = DeadlineScheduler()
    queue.submit("long", policy.deadline(playing_long, now))
    queue.submit("new utterance", policy.deadline(ListenerClock(), now, cut_at=now))
    queue.submit("dry", policy.deadline(about_dry, now))
    assert [queue.pop() for _ in range(3)] == ["dry", "new utterance", "long"]


# ----------------------------------------------------------------------------- simulation
@dataclass
class _Session:
    """A fake engine's session: segments of pieces, each piece ``audio`` seconds of speech that
    costs ``cost`` seconds of one worker."""

    name: str
    segments: list[list[float]]
    cost_ratio: float
    #: What a segment's first piece costs on top (its text's encoding, before any audio).
    start_cost: float = 0.0
    listener: ListenerClock = field(default_factory=ListenerClock)
    next_segment: int = 0
    next_piece: int = 0
    gaps: list[tuple[float, bool]] = field(default_factory=list)  # (length, at a segment start)

    def done(self) -> bool:
        return self.next_segment >= len(self.segments)

    def piece(self) -> tuple[float, bool]:
        audio = self.segments[self.next_segment][self.next_piece]
        return audio, self.next_piece == 0

    def advance(self) -> None:
        self.next_piece += 1
        if self.next_piece >= len(self.segments[self.next_segment]):
            self.next_segment, self.next_piece = self.next_segment + 1, 0


def _simulate(
    sessions: list[_Session],
    workers: int,
    *,
    fifo: bool = False,
    policy: DeadlinePolicy | None = None,
    slots: StartSlots | None = None,
    spacing: float = 0.0,
) -> None:
    """Discrete-event run: each session has at most one piece in flight (pieces of one session
    are sequential); a free worker takes the most urgent waiting piece (or the oldest, ``fifo``).
    All sessions start at 0; ``slots``: their first-audio deadlines spaced as the server does."""
    policy = policy or DeadlinePolicy()
    queue: DeadlineScheduler[_Session] = DeadlineScheduler()
    seq = 0.0
    now = 0.0
    for s in sessions:
        due = policy.deadline(s.listener, now, cut_at=0.0)
        if slots is not None:
            due = max(due, slots.slot(due, spacing))
        queue.submit(s, seq if fifo else due)
        seq += 1
    running: list[tuple[float, _Session]] = []  # (finishes at, session)
    while len(queue) or running:
        while len(running) < workers and len(queue):
            s = queue.pop()
            assert s is not None
            audio, starts = s.piece()
            running.append((now + audio * s.cost_ratio + (s.start_cost if starts else 0.0), s))
        running.sort(key=lambda r: r[0])
        now, s = running.pop(0)
        audio, segment_start = s.piece()
        if s.listener.started and s.listener.runs_dry_at is not None and s.listener.runs_dry_at < now - 1e-9:
            s.gaps.append((now - s.listener.runs_dry_at, segment_start))
        s.listener.handed(audio, now)
        s.advance()
        if not s.done():
            _, next_start = s.piece()
            queue.submit(s, seq if fifo else policy.deadline(s.listener, now, segment_start=next_start))
            seq += 1


def _reply(sentences: int = 6, pieces: int = 5, piece_audio: float = 0.2) -> list[list[float]]:
    return [[piece_audio] * pieces for _ in range(sentences)]


def test_within_capacity_deadlines_keep_every_listener_fed_where_fifo_order_does_not() -> None:
    # 12 listeners on 2 workers, 0.84 of what the workers carry; half the sessions come in
    # long pieces (a 1.5 s piece holds a worker 0.21 s), half in short ones. Taking turns, a
    # short-piece listener gets 0.1 s of audio per round of everyone's pieces (0.67 s) and runs
    # dry; by deadlines it is served as often as its listener needs.
    def sessions() -> list[_Session]:
        long = [_Session(f"long{i}", [[1.5] * 4 for _ in range(2)], cost_ratio=0.14) for i in range(6)]
        short = [_Session(f"short{i}", [[0.1] * 30 for _ in range(4)], cost_ratio=0.14) for i in range(6)]
        return long + short

    edf = sessions()
    _simulate(edf, workers=2)
    fifo = sessions()
    _simulate(fifo, workers=2, fifo=True)
    edf_gaps = sum(g for s in edf for g, _ in s.gaps)
    fifo_gaps = sum(g for s in fifo for g, _ in s.gaps)
    print({"edf": round(edf_gaps, 3), "fifo": round(fifo_gaps, 3)})
    assert fifo_gaps > 1.0
    assert edf_gaps < 0.05 * fifo_gaps


def test_over_capacity_every_listener_is_a_little_late_and_none_starves() -> None:
    # 1.5x what the workers carry: gaps cannot be avoided, but they are spread over everyone.
    sessions = [_Session(f"s{i}", _reply(sentences=8), cost_ratio=0.25) for i in range(12)]
    _simulate(sessions, workers=2)
    totals = [sum(g for g, _ in s.gaps) for s in sessions]
    assert min(totals) > 0  # nobody is clean while others starve...
    assert max(totals) <= 1.5 * statistics.median(totals)  # ...and nobody starves while others are fine


def test_over_capacity_gaps_fall_at_segment_starts_more_than_inside_segments() -> None:
    sessions = [_Session(f"s{i}", _reply(sentences=8), cost_ratio=0.25) for i in range(12)]
    _simulate(sessions, workers=2)
    at_start = sum(g for s in sessions for g, start in s.gaps if start)
    inside = sum(g for s in sessions for g, start in s.gaps if not start)
    no_grace = [_Session(f"s{i}", _reply(sentences=8), cost_ratio=0.25) for i in range(12)]
    _simulate(no_grace, workers=2, policy=DeadlinePolicy(boundary_grace=0.0))
    inside_no_grace = sum(g for s in no_grace for g, start in s.gaps if not start)
    at_start_no_grace = sum(g for s in no_grace for g, start in s.gaps if start)
    assert inside < inside_no_grace  # the grace moves gap time out of the middle of segments
    assert at_start / (at_start + inside) > 1.5 * at_start_no_grace / (at_start_no_grace + inside_no_grace)


# ----------------------------------------------------------------------------- start slots
def test_starts_within_the_burst_are_due_when_they_want_and_the_rest_are_spaced() -> None:
    slots = StartSlots(burst=3)
    due = [slots.slot(10.0, spacing=0.2) for _ in range(7)]
    assert due == pytest.approx([10.0, 10.0, 10.0, 10.2, 10.4, 10.6, 10.8])


def test_starts_that_come_spread_out_are_never_delayed() -> None:
    slots = StartSlots(burst=1)
    assert [slots.slot(t, spacing=0.2) for t in (1.0, 1.2, 1.5, 3.0)] == pytest.approx([1.0, 1.2, 1.5, 3.0])
    # One that comes too soon after the last waits for the spacing.
    assert slots.slot(3.05, spacing=0.2) == pytest.approx(3.2)


def test_the_burst_comes_back_after_a_quiet_while() -> None:
    slots = StartSlots(burst=2)
    assert [slots.slot(0.0, spacing=0.5) for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])
    # Long after: a full burst at once again.
    assert [slots.slot(10.0, spacing=0.5) for _ in range(3)] == pytest.approx([10.0, 10.0, 10.5])


def test_the_spacing_is_asked_per_start_and_zero_spacing_delays_nothing() -> None:
    slots = StartSlots(burst=1)
    assert [slots.slot(0.0, spacing=0.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]
    assert slots.slot(0.0, spacing=0.3) == 0.0
    assert slots.slot(0.0, spacing=0.1) == pytest.approx(0.3)  # after the last start's spacing
    with pytest.raises(ValueError, match="burst must be at least 1, got 0"):
        StartSlots(burst=0)


def test_starts_spaced_beyond_a_burst_keep_the_listeners_who_already_speak_fed() -> None:
    # 12 replies start at once on 2 workers: a 0.4 s fragment, then sentences, each segment
    # costing 0.06 s of a worker before its first audio. The steady load fits (12 × 0.12 of a
    # worker per second of audio = 0.72 of the two), but the start does not: everyone's
    # fragment, then everyone's next segment, all due within the fragments' 0.4 s.
    def sessions() -> list[_Session]:
        reply = [[0.4]] + [[0.3] + [0.6] * 5 for _ in range(3)]
        return [_Session(f"s{i}", [list(seg) for seg in reply], cost_ratio=0.12, start_cost=0.06) for i in range(12)]

    together = sessions()
    _simulate(together, workers=2)
    spaced = sessions()
    _simulate(spaced, workers=2, slots=StartSlots(burst=3), spacing=0.2)
    gaps_together = sum(g for s in together for g, _ in s.gaps)
    gaps_spaced = sum(g for s in spaced for g, _ in s.gaps)
    print({"together": round(gaps_together, 3), "spaced": round(gaps_spaced, 3)})
    assert sum(1 for s in together if s.gaps) >= 6  # most listeners stall together...
    assert gaps_spaced < 0.05 * gaps_together  # ...and spacing the later starts keeps them fed
