"""The audio path of one utterance: engine chunks → pause shaping → voice → 48 kHz → PCM frames.

All state that must stay continuous across segment joins (the voice stage's context, the
resampler's filter, the framer's partial frame) lives here, one instance per utterance, so a
reply cut into many segments comes out as one seamless stream. Every method is blocking and
is called from a worker thread, one call at a time.
"""

from __future__ import annotations

import time

import numpy as np

from bridge.audio.formats import PcmFormat
from bridge.audio.framing import Framer
from bridge.audio.pauses import PauseConfig, PauseShaper
from bridge.audio.resample import StreamResampler
from bridge.config import OUTPUT_SAMPLE_RATE
from bridge.segmenter import Boundary
from bridge.vc.base import VoiceStream


class AudioChain:
    """Shapes, converts, resamples and frames the speech of one utterance."""

    def __init__(
        self,
        tts_rate: int,
        *,
        frame_samples: int,
        fmt: PcmFormat,
        pauses: PauseConfig,
        voice: VoiceStream | None = None,
    ) -> None:
        self.voice = voice
        self._shaper = PauseShaper(tts_rate, pauses)
        self._resampler = StreamResampler(voice.output_rate if voice else tts_rate, OUTPUT_SAMPLE_RATE)
        self._framer = Framer(frame_samples, fmt)
        #: Samples at 48 kHz handed out so far (frames included in what push/end returned).
        self.samples_out = 0
        #: Seconds spent in each stage, for metrics and benchmarks.
        self.voice_seconds = 0.0
        self.resample_seconds = 0.0

    def _to_frames(self, audio: np.ndarray, *, last: bool = False) -> list[bytes]:
        started = time.perf_counter()
        if self.voice is not None:
            converted = self.voice.push(audio) if audio.size else np.zeros(0, np.float32)
            if last:
                converted = np.concatenate([converted, self.voice.flush()])
            audio = converted
            converted_at = time.perf_counter()
            self.voice_seconds += converted_at - started
            started = converted_at
        out = self._resampler.push(audio)
        if last:
            out = np.concatenate([out, self._resampler.flush()])
        self.samples_out += out.size
        frames = self._framer.push(out)
        if last:
            frames += self._framer.flush()
        self.resample_seconds += time.perf_counter() - started
        return frames

    def held_due_in(self) -> float | None:
        """Seconds until speech the voice stage holds between segments must be converted
        (then :meth:`voice_ready`); None when nothing is waiting for that."""
        return self.voice.held_due_in() if self.voice is not None else None

    def voice_ready(self) -> bool:
        """Whether the voice stage holds input it can convert now (see :meth:`convert_pending`)."""
        return self.voice is not None and self.voice.ready()

    def convert_pending(self) -> list[bytes]:
        """Convert what the voice stage holds ready (one block), without new speech."""
        if self.voice is None:
            return []
        started = time.perf_counter()
        audio = self.voice.push(np.zeros(0, np.float32))
        converted_at = time.perf_counter()
        self.voice_seconds += converted_at - started
        out = self._resampler.push(audio)
        self.samples_out += out.size
        frames = self._framer.push(out)
        self.resample_seconds += time.perf_counter() - converted_at
        return frames

    def begin_segment(self, boundary: Boundary, pitch_shift: float | None = None) -> None:
        if pitch_shift is not None and self.voice is not None:
            self.voice.set_pitch_shift(pitch_shift)
        self._shaper.begin_segment(boundary)

    def push(self, chunk: np.ndarray) -> list[bytes]:
        """One engine chunk of the current segment → the frames ready now."""
        return self._to_frames(self._shaper.push(chunk))

    def end_segment(self) -> list[bytes]:
        """The segment's trailing pause, trimmed to its boundary; the voice stage may then
        convert what it holds without waiting for the next segment (``convert_pending``)."""
        frames = self._to_frames(self._shaper.end_segment())
        if self.voice is not None:
            self.voice.input_paused()
        return frames

    def finish(self) -> list[bytes]:
        """End of utterance: drain every stage (voice context, resampler tail, short last frame)."""
        return self._to_frames(np.zeros(0, np.float32), last=True)
