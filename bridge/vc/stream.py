"""Streaming conversion: one session's speech into one voice, block by block, as it arrives.

:class:`RVCStream` runs the chain of :mod:`bridge.vc.voice` on overlapping windows, RVC's
realtime scheme (``skip_head``/``return_length``) with a few additions. Each block of ``B``
frames starting at frame ``t`` is converted from a window ``[t − C, t + B + S + Z + L)``
(:class:`~bridge.vc.layout.StreamLayout`). The synthesizer decodes ``[t − p, t + B + S + Z + p')``
(``p`` frames of decoder padding on each side, trimmed after the RMS mix) and the result is
joined to the previous block by SOLA: the offset in ``[0, Z]`` whose normalised
cross-correlation with the previous block's tail is largest, then a sin² crossfade over ``S``
frames. Windows always start on an even frame, so content frames (320 samples) fall on the same
grid as in whole-utterance conversion. The excitation phase (NSF sine) and the random draws are
carried per absolute frame, so that with models of finite reach, block-by-block output equals
whole-utterance output (:meth:`RVCVoice.convert`) away from the utterance edges, whatever the
block size.

A stream holds only its own state and is used by one thread at a time; the voice and the
device's models are shared.
"""

from __future__ import annotations

import time

import numpy as np

from bridge.cancel import CancelToken
from bridge.vc.base import VoiceError, VoiceStream
from bridge.vc.layout import HOP_16K, SR_16K, ConversionParams, StreamLayout
from bridge.vc.noise import NoiseTape, noise_seed
from bridge.vc.pacing import BlockPacer
from bridge.vc.pitch import shift_f0
from bridge.vc.signal import fade_in_window, mono, sola_offset
from bridge.vc.voice import RVCVoice


class RVCStream(VoiceStream):
    """One session's streaming conversion into one voice (see the module docstring)."""

    def __init__(
        self,
        voice: RVCVoice,
        input_rate: int,
        *,
        pitch_shift: float = 0.0,
        params: ConversionParams | None = None,
        layout: StreamLayout | None = None,
        cancel: CancelToken | None = None,
        pacer: BlockPacer | None = None,
    ) -> None:
        if input_rate <= 0:
            raise VoiceError(f"bad input rate {input_rate}")
        #: Sizes blocks from the listener's remaining audio; None: the layout's fixed schedule.
        self.pacer = pacer
        self.voice = voice
        self.input_rate = int(input_rate)
        self.params = params or ConversionParams()
        self.layout = layout or StreamLayout()
        self.cancel = cancel
        self._pitch_shift = float(pitch_shift)
        self._hop = voice.hop
        self._fade = fade_in_window(self.layout.crossfade * self._hop)
        self.blocks = 0  # blocks converted since the stream was opened (stats)
        self._pitch_multiple = 1
        if voice.f0:
            pitch = voice.models.pitch
            mult = getattr(pitch, "frame_multiple", None) or getattr(getattr(pitch, "model", None), "time_multiple", 1)
            self._pitch_multiple = int(mult) if isinstance(mult, int) and mult > 1 else 1
        self.reset()

    # ---- VoiceStream -----------------------------------------------------------------------

    @property
    def output_rate(self) -> int:
        return self.voice.sample_rate

    @property
    def pitch_shift(self) -> float:
        return self._pitch_shift

    def set_pitch_shift(self, semitones: float) -> None:
        self._pitch_shift = float(semitones)

    def reset(self) -> None:
        """Drop all state (held audio, context, crossfade tail): the next push starts afresh."""
        lay = self.layout
        self._resampler = None
        if self.input_rate != SR_16K:
            import soxr

            self._resampler = soxr.ResampleStream(self.input_rate, SR_16K, 1, dtype="float32", quality="HQ")
        self._origin = -lay.context  # absolute frame of self._audio[0]
        self._audio = np.zeros(lay.context * HOP_16K, dtype=np.float32)
        self._f0 = np.zeros(lay.context + 1, dtype=np.float32)  # raw f0 per frame from _origin
        self._received = 0  # 16 kHz samples of real input
        self._out = 0  # next frame to emit
        self._emitted = 0  # samples emitted (model rate)
        self._tail: np.ndarray | None = None
        self._phase = 0.0
        self._phase_frame = -lay.context
        self._noise = NoiseTape(noise_seed(self.params.seed), self.voice.inter_channels, self._hop)
        self._paused = False  # input_paused() until new input: held audio may go in a smaller block
        if self.pacer is not None:
            self.pacer.restart()

    def push(self, audio: np.ndarray) -> np.ndarray:
        x = mono(audio)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x, last=False)
        self._append(x)
        return self._drain(final=False)

    def flush(self) -> np.ndarray:
        if self._resampler is not None:
            self._append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        emitted_before = self._emitted
        target = round(self._received * self._hop / HOP_16K)  # the input's duration
        out = self._drain(final=True)[: max(target - emitted_before, 0)]
        fade = min(len(out), self._hop)  # 10 ms sin² fade-out: the utterance ends cleanly
        if fade:
            out = out.copy()
            out[-fade:] *= fade_in_window(fade)[::-1]
        self.reset()
        return out

    # ---- internals -------------------------------------------------------------------------

    def _append(self, x: np.ndarray) -> None:
        if len(x):
            self._audio = np.concatenate([self._audio, x])
            self._received += len(x)
            self._paused = False

    def _available_frames(self) -> int:
        """Frames (from absolute 0) of real input fully received."""
        return self._received // HOP_16K

    def _drain(self, final: bool) -> np.ndarray:
        lay = self.layout
        chunks: list[np.ndarray] = []
        while True:
            if final:
                end = -(-self._received // HOP_16K)  # frames holding any real input
                if self._out >= end:
                    break
                # The tail goes out in one piece when all is converted: the largest blocks
                # cost the least (a paced size would only add context work).
                whole = lay.block if self.pacer is not None else self._next_block()
                block = lay.cover(min(whole, end - self._out))  # a warm size; silence after the end
                self._pad_to(self._out + block + lay.latency_frames)
            else:
                ready = self._ready_block()
                if ready is None:
                    break
                block = ready
            if self.cancel is not None:
                self.cancel.raise_if_cancelled()
            chunks.append(self._block(block))
            if self.pacer is not None and not final:
                break  # one block per push: it goes out now; ready() says if another waits
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        out = np.concatenate(chunks)
        self._emitted += len(out)
        return out

    def ready(self) -> bool:
        return self._ready_block() is not None

    def input_paused(self) -> None:
        self._paused = True

    def held_due_in(self) -> float | None:
        held = self._held_frames()
        if self.pacer is None or not self._paused or not self.pacer.started or held < 2:
            return None  # before the first audio, the first block waits for its full size
        return self.pacer.seconds_until_due(held)

    def _held_frames(self) -> int:
        """Input frames a block could convert now (even), beyond what is already out."""
        have = self._available_frames() - self._out - self.layout.latency_frames
        return max(0, have - have % 2)

    def _ready_block(self) -> int | None:
        """The block a push would convert now, or None: the pacer's size when that much input
        is here; while input is paused (a segment ended, the next one not yet here), what is
        held, once waiting longer for more would leave the listener without audio."""
        held = self._held_frames()
        block = self._next_block()
        if held >= block:
            return block
        due = self.held_due_in()
        if due is not None and due <= 0:
            # A warm size; what is left over stays held until it is due in its turn (the
            # block's audio refills the listener's buffer, so usually the next segment first).
            return self.layout.fit(held)
        return None

    def _next_block(self) -> int:
        if self.pacer is not None:
            return self.pacer.next_frames()
        return self.layout.block_at(self._out)

    def _pad_to(self, frame: int) -> None:
        """End of input: zeros up to absolute ``frame`` (not counted as received)."""
        want = (frame - self._origin) * HOP_16K
        if len(self._audio) < want:
            self._audio = np.concatenate([self._audio, np.zeros(want - len(self._audio), np.float32)])

    def _update_f0(self, win_start: int, win_end: int) -> np.ndarray:
        """Raw f0 for frames ``[win_start, win_end)``, re-estimating the newest frames."""
        lay = self.layout
        need = win_end - self._origin + 1
        if len(self._f0) < need:
            self._f0 = np.concatenate([self._f0, np.zeros(need - len(self._f0), np.float32)])
        seg_start = max(self._origin, win_start + lay.context - lay.f0_context)
        mult = self._pitch_multiple
        if mult > 1:
            # The estimator pads to a multiple of frames anyway (RMVPE: 32): fill the
            # padding with real left context instead (as RVC's realtime f0 segment does).
            frames = -(-(win_end - seg_start + 1) // mult) * mult
            seg_start = max(self._origin, win_end - frames + 1)
        a = (seg_start - self._origin) * HOP_16K
        b = (win_end - self._origin) * HOP_16K
        est = self.voice.estimate_f0(self._audio[a:b])  # frames seg_start … win_end
        # Estimates at a segment's start lack left context: keep them only at the utterance
        # start (before it there is nothing but the zero context).
        keep_from = 0 if seg_start <= -lay.context else lay.f0_edge
        lo = seg_start - self._origin + keep_from
        self._f0[lo : lo + len(est) - keep_from] = est[keep_from:]
        return self._f0[win_start - self._origin : win_end - self._origin + 1]

    def _block(self, block: int) -> np.ndarray:
        context = self.layout.context_at(self._out)
        out, seconds, waited = self._convert_block(block)
        if self.pacer is not None:
            self.pacer.converted(block + context, seconds, waited)
            self.pacer.converted_audio(len(out) / self.voice.sample_rate)
        return out

    def _convert_block(self, block: int) -> tuple[np.ndarray, float, float]:
        """Convert one block; also the seconds its model work took and the seconds it waited
        for the compute slot (the pacer learns the two apart: see BlockPacer.converted)."""
        lay, voice, hop = self.layout, self.voice, self._hop
        t = self._out
        win_start = t - lay.context  # pitch and phase bookkeeping: always the full context
        win_end = t + block + lay.latency_frames
        context = lay.context_at(t)
        model_start = t - context  # the window the models see (less silence at the start)
        a = (model_start - self._origin) * HOP_16K
        window = self._audio[a : a + (win_end - model_start) * HOP_16K]
        pad_l = min(lay.dec_pad, lay.context)  # <= context: see StreamLayout.lead
        pad_r = lay.right_pad
        head = context - pad_l
        length = pad_l + block + lay.crossfade + lay.search + pad_r
        f0 = window_f0 = None
        asked = time.perf_counter()
        with voice.models.compute:
            started = time.perf_counter()
            if voice.f0:
                f0 = shift_f0(self._update_f0(win_start, win_end), self._pitch_shift)
                self._advance_phase(f0, win_start, t - pad_l)
                window_f0 = f0[model_start - win_start :]
            wav = voice.convert_window(
                window, window_f0, self.params, head=head, length=length, phase=self._phase,
                noise=self._noise, first_frame=model_start,
            )  # fmt: skip
            seconds = time.perf_counter() - started
        wav = wav[pad_l * hop : len(wav) - pad_r * hop]
        if voice.f0:
            self._advance_phase(f0, win_start, t + block - pad_l)
        out = self._crossfade(wav, block)
        self._out = t + block
        self._trim()
        self.blocks += 1
        return out, seconds, started - asked

    def _advance_phase(self, f0: np.ndarray, win_start: int, to_frame: int) -> None:
        """Excitation phase (cycles) at ``to_frame``, summing f0 of the frames in between."""
        if to_frame <= self._phase_frame:
            return
        a = self._phase_frame - win_start
        b = to_frame - win_start
        if a < 0:
            raise RuntimeError("phase bookkeeping fell behind the window")  # cannot happen
        cycles = np.sum(f0[a:b].astype(np.float64)) * self._hop / self.voice.sample_rate
        self._phase = float((self._phase + cycles) % 1.0)
        self._phase_frame = to_frame

    def _crossfade(self, wav: np.ndarray, block: int) -> np.ndarray:
        hop, n = self._hop, len(self._fade)
        if self._tail is None:
            offset = 0
            tail = np.zeros(n, np.float32)
        else:
            tail = self._tail
            offset = sola_offset(tail, wav, self.layout.search * hop)
        wav = wav[offset:].copy()
        wav[:n] = wav[:n] * self._fade + tail * (1.0 - self._fade)
        self._tail = wav[block * hop : block * hop + n].copy()
        return wav[: block * hop]

    def _trim(self) -> None:
        """Forget audio and f0 older than any later window or pitch segment needs."""
        lay = self.layout
        keep_from = self._out - max(lay.context, lay.f0_context + self._pitch_multiple)
        drop = keep_from - self._origin
        if drop > 0:
            self._audio = self._audio[drop * HOP_16K :]
            self._f0 = self._f0[drop:]
            self._origin = keep_from
