"""How a voice is applied (:class:`ConversionParams`) and how a stream cuts audio into blocks
(:class:`StreamLayout`), with the sample grid every part of the chain shares.

Time is counted in frames of 10 ms: 160 samples at 16 kHz (the content encoder's and pitch
estimator's rate), ``hop`` samples at the voice's rate. Each block of ``B`` frames starting at
frame ``t`` is converted from a window ``[t − C, t + B + S + Z + L)``: ``C`` frames of left
context, ``S`` crossfade frames and ``Z`` search frames that overlap the next block, and ``L``
lookahead frames that only give the models right context (see :mod:`bridge.vc.stream`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from bridge.config import RVCSettings
from bridge.vc.synthesizer import NOISE_SCALE

#: The documented defaults of the ``rvc_*`` settings, which these parameters default to.
_DEFAULTS = RVCSettings()

SR_16K = 16_000
HOP_16K = 160  # one synthesizer frame (10 ms) at 16 kHz
CONTENT_HOP_16K = 320  # one content frame (20 ms)
CONTENT_WINDOW_16K = 400


@dataclass(frozen=True)
class ConversionParams:
    """How a voice is applied (RVC WebUI defaults, as the ``rvc_*`` settings document them)."""

    index_rate: float = _DEFAULTS.index_rate
    protect: float = _DEFAULTS.protect
    rms_mix_rate: float = _DEFAULTS.rms_mix_rate
    #: Scale of the prior sample (RVC: 0.66666); 0 makes the prior deterministic.
    noise_scale: float = NOISE_SCALE
    #: NSF excitation noise (the unvoiced excitation and a little breath on voiced frames).
    source_noise: bool = True
    speaker_id: int = _DEFAULTS.speaker_id
    #: Seed of the per-stream noise; None draws one per stream.
    seed: int | None = None

    def deterministic(self) -> ConversionParams:
        """The same parameters with every random draw switched off."""
        return replace(self, noise_scale=0.0, source_noise=False)


@dataclass(frozen=True)
class StreamLayout:
    """Block geometry of :class:`~bridge.vc.stream.RVCStream`, in 10 ms frames (see the module docstring)."""

    block: int = 50
    crossfade: int = 4
    search: int = 1
    context: int = 100
    lookahead: int = 4
    dec_pad: int = 2
    #: Frames of audio before each block's new audio that the pitch estimator also sees.
    f0_context: int = 16
    #: Estimates this close to the start of a pitch segment are not kept (edge effects).
    f0_edge: int = 4
    #: The first block of an utterance (None: ``block``); later blocks grow to ``block``
    #: (see :meth:`block_at`). Smaller means sooner first audio.
    first_block: int | None = None
    #: Left context before the utterance's start (silence) that the first windows convert
    #: (None: all of ``context``, as RVC's realtime buffer, which starts full of zeros). Less
    #: makes the first block cheaper, so first audio comes sooner (see :meth:`context_at`).
    start_context: int | None = None
    #: Block sizes are multiples of ``step`` (and ``first_block``, ``block``): every new size
    #: costs the model a one-off kernel set-up on its first call (oneDNN's bf16 convolutions on a
    #: CPU: 0.5-1.5 s per size for a v2 decoder), so paced, held and tail blocks keep to a few sizes
    #: that warm-up can cover. 2: any even size.
    step: int = 20

    def __post_init__(self) -> None:
        if self.block < 2 or self.block % 2:
            raise ValueError(f"block must be an even number of frames >= 2, got {self.block}")
        if self.context < 0 or self.context % 2:
            raise ValueError(f"context must be an even number of frames >= 0, got {self.context}")
        if min(self.crossfade, self.search, self.lookahead, self.dec_pad, self.f0_context, self.f0_edge) < 0:
            raise ValueError("frame counts must be >= 0")
        if self.f0_edge > self.f0_context:
            raise ValueError("f0_edge must not exceed f0_context")
        if self.first_block is not None and (self.first_block < 2 or self.first_block % 2):
            raise ValueError(f"first_block must be an even number of frames >= 2, got {self.first_block}")
        if self.start_context is not None and (self.start_context < 0 or self.start_context % 2):
            raise ValueError(f"start_context must be an even number of frames >= 0, got {self.start_context}")
        if self.step < 2 or self.step % 2:
            raise ValueError(f"step must be an even number of frames >= 2, got {self.step}")
        if self.first_block is not None and self.first_block > self.block:
            raise ValueError(f"first_block ({self.first_block}) must not exceed block ({self.block})")

    @classmethod
    def from_seconds(
        cls,
        block: float = 0.5,
        crossfade: float = _DEFAULTS.crossfade_seconds,
        context: float = 1.0,
        lookahead: float = _DEFAULTS.lookahead_seconds,
        first_block: float | None = None,
        start_context: float | None = None,
        step: float = _DEFAULTS.block_step_seconds,
        **frames: int,
    ) -> StreamLayout:
        """Seconds → frames: block sizes and context rounded to even frame counts."""
        context_frames = max(0, 2 * round(context * 50))
        return cls(
            step=max(2, 2 * round(step * 50)),
            block=max(2, 2 * round(block * 50)),
            crossfade=max(0, round(crossfade * 100)),
            context=context_frames,
            lookahead=max(0, round(lookahead * 100)),
            first_block=None if not first_block else max(2, 2 * round(first_block * 50)),
            start_context=None if start_context is None else min(context_frames, 2 * round(start_context * 50)),
            **frames,
        )

    @property
    def right_pad(self) -> int:
        return min(self.dec_pad, self.lookahead)

    def window_frames(self, block: int | None = None) -> int:
        b = self.block if block is None else block
        return self.context + b + self.crossfade + self.search + self.lookahead

    def block_at(self, frame: int) -> int:
        """Size of the block that starts at ``frame``.

        With ``first_block`` the blocks grow from it, each at most as long as the audio
        already emitted (``first_block``, then doubling up to ``block``), so that the first
        audio comes early and each later block is computed while earlier audio still plays.
        """
        if not self.first_block:
            return self.block
        if frame <= 0:
            return self.first_block
        return self.fit(min(self.block, max(self.first_block, frame)))

    @functools.cached_property
    def sizes(self) -> tuple[int, ...]:
        """Every block size the stream converts (held remainders below ``step`` aside)."""
        ladder = set(range(self.step, self.block + 1, self.step)) | {self.block}
        if self.first_block:
            ladder.add(self.first_block)
        return tuple(sorted(ladder))

    def fit(self, frames: int) -> int:
        """The largest size of :attr:`sizes` within ``frames`` (``frames`` itself, even, when
        it is below them all: a held remainder)."""
        within = [size for size in self.sizes if size <= frames]
        return within[-1] if within else frames - frames % 2

    def cover(self, frames: int) -> int:
        """The smallest size of :attr:`sizes` that holds ``frames`` (the tail at a flush,
        padded with silence), or ``frames`` rounded up to even beyond ``block``."""
        above = [size for size in self.sizes if size >= frames]
        return above[0] if above else frames + frames % 2

    @property
    def lead(self) -> int:
        """Frames of silence before the utterance that the first window converts: at least the
        decoder padding, so that every block decodes from the same offset (phase bookkeeping)."""
        if self.start_context is None:
            return self.context
        return min(self.context, max(self.start_context, self.dec_pad + self.dec_pad % 2))

    def context_at(self, frame: int) -> int:
        """Left context of the window of the block starting at ``frame``: ``context``, but no
        more than ``lead`` frames of the silence before the utterance (even, as ``frame`` is)."""
        return min(self.context, frame + self.lead)

    @property
    def latency_frames(self) -> int:
        """Input a block needs beyond the audio it emits (plus the block itself)."""
        return self.crossfade + self.search + self.lookahead
