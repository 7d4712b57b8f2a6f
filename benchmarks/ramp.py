"""The concurrency sweep: how many sessions run at once with zero underruns. No I/O.

Levels go 1, 2, 3, 4, 6, 8, 12, 16, 24, 32… (each step about ×1.5 once past 4). The sweep runs
a level, and stops after the first level where any session had an underrun or failed: the
answer is the last level before it. If every level up to ``max_sessions`` was clean, the
answer is that cap and ``capped`` says the true figure may be higher.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


def ramp_levels(max_sessions: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64… up to ``max_sessions`` (always included)."""
    if max_sessions < 1:
        raise ValueError("max_sessions must be at least 1")
    levels = [1, 2, 3, 4]
    while levels[-1] < max_sessions:
        last = levels[-1]  # powers of two ×1.5, the others ×4/3: 4, 6, 8, 12, 16, 24…
        levels.append(last * 3 // 2 if last & (last - 1) == 0 else last * 4 // 3)
    levels = [n for n in levels if n < max_sessions] + [max_sessions]
    return sorted(set(levels))


@dataclass
class LevelResult:
    sessions: int
    underruns: int
    failures: int = 0

    @property
    def clean(self) -> bool:
        return self.underruns == 0 and self.failures == 0


@dataclass
class Ramp:
    """Feed it each level's outcome; it says which level to run next, and the answer."""

    max_sessions: int = 16
    results: list[LevelResult] = field(default_factory=list)
    #: Run exactly these levels, whatever their outcome (repeats, an over-capacity level).
    fixed_levels: list[int] | None = None

    def levels(self) -> Iterator[int]:
        """The levels to run, in order; stops after the first unclean one is recorded."""
        if self.fixed_levels is not None:
            yield from self.fixed_levels
            return
        for level in ramp_levels(self.max_sessions):
            if self.results and not self.results[-1].clean:
                return
            yield level

    def record(self, sessions: int, underruns: int, failures: int = 0) -> None:
        self.results.append(LevelResult(sessions, underruns, failures))

    @property
    def max_clean(self) -> int:
        """The most sessions that ran with no underrun (0: not even one session did)."""
        best = 0
        for result in self.results:
            if not result.clean:
                break
            best = result.sessions
        return best

    @property
    def capped(self) -> bool:
        """Every level up to the cap was clean: the machine may take more."""
        return bool(self.results) and all(r.clean for r in self.results) and self.results[-1].sessions == self.max_sessions
