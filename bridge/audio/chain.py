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
        self._tts_rate = tts_rate
        #: Word timings: engine-rate samples that went on past pause shaping (the timeline every
        #: later stage keeps: the voice stage and the resampler only delay or rescale it), and
        #: where the current segment's output begins in it.
        self._shaped = 0
        self._segment_at = 0
        self._segment_sound: tuple[float, float] | None = None

    def stream_seconds(self, sample: int) -> float | None:
        """Where sample ``sample`` of the current segment's engine speech (from its first) is
        in the utterance's output, in seconds from the chain's first output sample; None until
        the segment's first sound is out of pause shaping (the shift is known then)."""
        shaped = self._shaper.output_position(sample)
        if shaped is None:
            return None
        delay = self.voice.output_delay_seconds() if self.voice is not None else 0.0
        return (self._segment_at + shaped) / self._tts_rate + delay

    @property
    def segment_sound(self) -> tuple[float, float] | None:
        """After :meth:`end_segment`: where the segment's sound began and ended in the output
        (seconds, as :meth:`stream_seconds`), its trailing pause left out; None when it made none."""
        return self._segment_sound

    def _to_frames(self, audio: np.ndarray, *, last: bool = False) -> list[bytes]:
        self._shaped += audio.size
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
        self._segment_at = self._shaped
        self._segment_sound = None

    def push(self, chunk: np.ndarray) -> list[bytes]:
        """One engine chunk of the current segment → the frames ready now."""
        return self._to_frames(self._shaper.push(chunk))

    def end_segment(self) -> list[bytes]:
        """The segment's trailing pause, trimmed to its boundary; the voice stage may then
        convert what it holds without waiting for the next segment (``convert_pending``)."""
        made_sound = self._shaper.lead_dropped is not None
        tail = self._shaper.end_segment()
        if made_sound and self._shaper.sound_end is not None:
            delay = self.voice.output_delay_seconds() if self.voice is not None else 0.0
            start, end = self._segment_at / self._tts_rate, (self._segment_at + self._shaper.sound_end) / self._tts_rate
            self._segment_sound = (start + delay, end + delay)
        frames = self._to_frames(tail)
        if self.voice is not None:
            self.voice.input_paused()
        return frames

    def finish(self) -> list[bytes]:
        """End of utterance: drain every stage (voice context, resampler tail, short last frame)."""
        return self._to_frames(np.zeros(0, np.float32), last=True)
