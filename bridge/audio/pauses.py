"""Pause shaping at segment joins.

TTS engines pad every segment with silence (Piper: ~15–65 ms before, ~150–220 ms after). When a
reply is cut into segments mid-sentence, that padding becomes an audible hole inside the
sentence. The shaper trims each segment's leading silence to a short pre-roll and its trailing
silence to a pause that fits why the segment ended (sentence, clause, or a cut between words),
leaving silences *inside* a segment untouched. It only ever cuts inside near-digital silence and
fades at the cut, so it cannot click.

It works on the stream: audio is released as soon as it is known not to be trailing silence, so
the first audible sample is never delayed by more than one analysis window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.segmenter import Boundary

_EMPTY = np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class PauseConfig:
    """Silence kept after a segment, by boundary kind, and the detector's parameters."""

    sentence_ms: float = 250.0
    clause_ms: float = 120.0
    word_ms: float = 30.0
    lead_ms: float = 10.0
    fade_ms: float = 4.0
    window_ms: float = 10.0
    #: A window whose peak is below this is silence (Piper's padding is < 0.001).
    threshold: float = 0.002

    def pause_ms(self, boundary: Boundary) -> float:
        """A sentence's pause also after a paragraph and at a flush; a clause's after a pause mark;
        a word's when the segment was cut between words (length or fast path)."""
        if boundary in (Boundary.SENTENCE, Boundary.PARAGRAPH, Boundary.FLUSH):
            return self.sentence_ms
        if boundary is Boundary.PAUSE:
            return self.clause_ms
        return self.word_ms


class PauseShaper:
    """Trims the silence around each segment of one utterance. Not thread-safe; one per session."""

    def __init__(self, sample_rate: int, config: PauseConfig | None = None) -> None:
        self.config = config or PauseConfig()
        self.sample_rate = sample_rate
        self._window = max(1, round(sample_rate * self.config.window_ms / 1000))
        self._lead = round(sample_rate * self.config.lead_ms / 1000)
        self._fade = round(sample_rate * self.config.fade_ms / 1000)
        self._boundary = Boundary.SENTENCE
        self._in_lead = True
        self._lead_silence = _EMPTY  # silence seen before the first sound of the segment
        self._pending = _EMPTY  # audio not yet classified (less than one window)
        self._held = _EMPTY  # a run of trailing silence, released if sound follows
        #: Word timings: the segment's input samples (from its first) dropped before its first
        #: sound, once that sound is found (None before), and its output so far; where its
        #: sound ends in the output, once the segment ended.
        self.lead_dropped: int | None = None
        self.segment_out = 0
        self.sound_end: int | None = None
        self._seen = 0  # the segment's input samples classified so far

    def begin_segment(self, boundary: Boundary) -> None:
        """The next pushes belong to a new segment that will end at ``boundary``."""
        self._boundary = boundary
        self._in_lead = True
        self._lead_silence = _EMPTY
        self._pending = _EMPTY
        self._held = _EMPTY
        self.lead_dropped = None
        self.segment_out = 0
        self._seen = 0

    def output_position(self, sample: int) -> int | None:
        """Where input sample ``sample`` of the segment (from its first) lands in the segment's
        output; None until the first sound is found. Only leading silence is ever dropped
        before sound, and silences inside a segment are kept, so this is a shift."""
        if self.lead_dropped is None:
            return None
        return max(0, sample - self.lead_dropped)

    def _silent(self, window: np.ndarray) -> bool:
        return float(np.max(np.abs(window))) < self.config.threshold

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Audio of the current segment in; audio safe to play now out."""
        audio = np.asarray(audio, dtype=np.float32)
        if self._pending.size:
            audio = np.concatenate([self._pending, audio])
        out: list[np.ndarray] = []
        w = self._window
        full = (audio.size // w) * w
        self._pending = audio[full:]
        for start in range(0, full, w):
            window = audio[start : start + w]
            silent = self._silent(window)
            if self._in_lead:
                if silent:
                    # Only the last `lead` samples can ever be kept as pre-roll.
                    joined = np.concatenate([self._lead_silence, window])
                    self._lead_silence = joined[joined.size - self._lead :] if self._lead else _EMPTY
                    continue
                self._in_lead = False
                self.lead_dropped = self._seen + start - self._lead_silence.size
                out.append(self._fade_in(self._lead_silence))
                self._lead_silence = _EMPTY
                out.append(window)
                continue
            if silent:
                self._held = np.concatenate([self._held, window])
            else:
                if self._held.size:
                    out.append(self._held)
                    self._held = _EMPTY
                out.append(window)
        self._seen += full
        released = np.concatenate(out) if out else _EMPTY
        self.segment_out += released.size
        return released

    def end_segment(self) -> np.ndarray:
        """The segment is over: release its trailing pause, trimmed to the boundary's length."""
        if self._in_lead:
            # The segment never made a sound: keep nothing of it.
            self.sound_end = self.segment_out
            self.begin_segment(self._boundary)
            return _EMPTY
        tail = np.concatenate([self._held, self._pending])
        if tail.size and not self._silent(tail):
            # Sound right up to the end (a cut inside the last window): keep it all.
            kept = tail
            self.sound_end = self.segment_out + tail.size
        else:
            keep = round(self.sample_rate * self.config.pause_ms(self._boundary) / 1000)
            kept = tail[:keep] if tail.size > keep else tail
            if tail.size > keep:
                kept = self._fade_out(kept)
            self.sound_end = self.segment_out
        self.begin_segment(self._boundary)
        return kept

    def _fade_in(self, audio: np.ndarray) -> np.ndarray:
        n = min(self._fade, audio.size)
        if n == 0:
            return audio
        audio = audio.copy()
        audio[:n] *= 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n, dtype=np.float32))
        return audio

    def _fade_out(self, audio: np.ndarray) -> np.ndarray:
        n = min(self._fade, audio.size)
        if n == 0:
            return audio
        audio = audio.copy()
        audio[audio.size - n :] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n, dtype=np.float32))
        return audio
