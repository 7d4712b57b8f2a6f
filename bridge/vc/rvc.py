"""RVC voice conversion: the conversion chain, streaming, and the voice cache.

Chain for one window of 16 kHz audio (:meth:`RVCVoice.convert_window`)::

    content features (ContentEncoder, 50 fps; v1 256-d, v2 768-d)
      → index retrieval (FeatureIndex.blend, index_rate), at 50 fps
      → 2× nearest upsample to 100 fps, padded/trimmed to len(audio) // 160 frames
      → pitch: f0 (Hz, shifted) → coarse bins; protect (voiceless frames keep un-retrieved features)
      → synthesizer at the model rate (32/40/48 kHz), optionally only a slice of frames
      → RMS mix (output loudness follows the input's by 1 − rms_mix_rate)

Streaming (:class:`RVCStream`) runs that chain on overlapping windows, RVC's realtime scheme
(``skip_head``/``return_length``) with a few additions. Time is counted in frames of 10 ms
(160 samples at 16 kHz, ``hop`` samples at the model rate). Each block of ``B`` frames
starting at frame ``t`` is converted from a window ``[t − C, t + B + S + Z + L)``: ``C``
frames of left context, ``S`` crossfade frames and ``Z`` search frames that overlap the next
block, and ``L`` lookahead frames that only give the models right context. The synthesizer
decodes ``[t − p, t + B + S + Z + p')`` (``p`` frames of decoder padding on each side, trimmed
after the RMS mix) and the result is joined to the previous block by SOLA: the offset in
``[0, Z]`` whose normalised cross-correlation with the previous block's tail is largest, then a
sin² crossfade over ``S`` frames. Windows always start on an even frame, so content frames
(320 samples) fall on the same grid as in whole-utterance conversion. The excitation phase
(NSF sine) and the random draws are carried per absolute frame, so that with models of finite
reach, block-by-block output equals whole-utterance output (:meth:`RVCVoice.convert`) away
from the utterance edges, whatever the block size.

Threading: models are shared (one content encoder and one pitch estimator per device, one
synthesizer per voice) and only read during inference. A per-device semaphore bounds how many
blocks run at once (``rvc_device_concurrency``; on a CPU one at a time is fastest). A stream
holds only its own state and is used by one thread at a time.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from bridge.cancel import CancelToken
from bridge.config import EngineSettings, RVCSettings
from bridge.vc.base import VoiceConverter, VoiceError, VoiceStream
from bridge.vc.checkpoint import (
    CheckpointError,
    MissingIndexError,
    VoiceCheckpoint,
    build_from_checkpoint,
    read_checkpoint,
)
from bridge.listener import ListenerClock
from bridge.vc.pacing import BlockPacer
from bridge.vc.pitch import f0_to_coarse, shift_f0
from bridge.vc.synthesizer import NOISE_SCALE, Synthesizer

log = logging.getLogger(__name__)

SR_16K = 16_000
HOP_16K = 160  # one synthesizer frame (10 ms) at 16 kHz
CONTENT_HOP_16K = 320  # one content frame (20 ms)
CONTENT_WINDOW_16K = 400
RMS_FLOOR = 1e-3


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversionParams:
    """How a voice is applied (RVC WebUI defaults)."""

    index_rate: float = 0.75
    protect: float = 0.33
    rms_mix_rate: float = 0.25
    #: Scale of the prior sample (RVC: 0.66666); 0 makes the prior deterministic.
    noise_scale: float = NOISE_SCALE
    #: NSF excitation noise (the unvoiced excitation and a little breath on voiced frames).
    source_noise: bool = True
    speaker_id: int = 0
    #: Seed of the per-stream noise; None draws one per stream.
    seed: int | None = None

    def deterministic(self) -> ConversionParams:
        """The same parameters with every random draw switched off."""
        return replace(self, noise_scale=0.0, source_noise=False)


@dataclass(frozen=True)
class StreamLayout:
    """Block geometry of :class:`RVCStream`, in 10 ms frames (see the module docstring)."""

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
        crossfade: float = 0.04,
        context: float = 1.0,
        lookahead: float = 0.04,
        first_block: float | None = None,
        start_context: float | None = None,
        step: float = 0.2,
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


# --------------------------------------------------------------------------------------
# Shared per-device models
# --------------------------------------------------------------------------------------


class ContentModel(Protocol):
    def extract(self, audio16k: torch.Tensor, version: str) -> torch.Tensor: ...


class PitchModel(Protocol):
    def f0(self, audio16k: np.ndarray) -> np.ndarray: ...


def resolve_device(name: str) -> torch.device:
    """``auto`` → the first CUDA device when one is usable, else the CPU."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        # ROCm builds of torch answer to "cuda" too: this is "no NVIDIA or AMD GPU usable".
        raise VoiceError(f"device {name!r} requested but torch sees no GPU (CUDA or ROCm)")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX): where it does, bf16
    convolutions run about twice as fast as fp32; elsewhere they are emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_precision(precision: str, device: torch.device) -> tuple[torch.dtype, torch.dtype | None]:
    """(weights dtype, autocast dtype or None). ``auto``: fp16 on CUDA; on the CPU bf16 where
    the CPU has native bf16 (the only way to real time there), else fp32."""
    precision = (precision or "auto").lower()
    if precision == "auto":
        if device.type == "cuda":
            precision = "fp16"
        else:
            precision = "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp32":
        return torch.float32, None
    if precision == "fp16":
        if device.type != "cuda":
            raise VoiceError(
                "fp16 precision needs a CUDA device (an NVIDIA GPU, or an AMD one with torch's ROCm build; "
                "use fp32 or bf16 on the CPU)"
            )
        return torch.float16, None
    if precision == "bf16":
        # Weights stay fp32; matmuls/convolutions run in bf16 under autocast, normalisations,
        # softmax and the excitation stay fp32.
        return torch.float32, torch.bfloat16
    raise VoiceError(f"unknown precision {precision!r} (auto, fp32, fp16, bf16)")


@dataclass(frozen=True)
class DeviceDefaults:
    """What the ``auto``/empty RVC settings become on a device.

    On CUDA: RMVPE pitch and short blocks (lowest latency; the GPU has compute to spare). On a
    CPU: parselmouth pitch (RMVPE costs ~0.2 RTF there), blocks up to 2 s with 0.5 s of context,
    so that v2 40k converts in real time on 2 cores (``benchmarks/results/*-rvc-rtf*.md``), and
    a 0.6 s first block: at RTF ≈ 0.6 a shorter one cannot be followed without a gap (blocks
    are then paced, :mod:`bridge.vc.pacing`).
    """

    pitch_method: str
    block_seconds: float
    context_seconds: float
    first_block_seconds: float

    @classmethod
    def for_device(cls, device: torch.device) -> DeviceDefaults:
        if device.type == "cpu":
            return cls(pitch_method="parselmouth", block_seconds=2.0, context_seconds=0.5, first_block_seconds=0.6)
        return cls(pitch_method="rmvpe", block_seconds=0.5, context_seconds=1.0, first_block_seconds=0.24)


def _or_default(value: Any, default: Any) -> Any:
    """A setting's value, or the device's ``default`` where it is empty or ``auto``."""
    return default if value is None or value == "auto" else value


class DeviceModels:
    """The content encoder and pitch estimator shared by every voice on one device.

    Both are loaded lazily, once (guarded by a lock); ``compute`` bounds how many blocks run
    at once on the device.
    """

    def __init__(
        self,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        *,
        autocast: torch.dtype | None = None,
        content_loader: Callable[[], ContentModel] | None = None,
        pitch_loader: Callable[[], PitchModel] | None = None,
        concurrency: int = 1,
    ) -> None:
        self.device = device
        self.dtype = dtype
        self.autocast = autocast
        self._content_loader = content_loader
        self._pitch_loader = pitch_loader
        self._content: ContentModel | None = None
        self._pitch: PitchModel | None = None
        self._lock = threading.Lock()
        self.compute = threading.BoundedSemaphore(max(1, concurrency))

    @property
    def content(self) -> ContentModel:
        if self._content is None:
            with self._lock:
                if self._content is None:
                    if self._content_loader is None:
                        raise VoiceError("no content encoder configured")
                    self._content = self._content_loader()
        return self._content

    @property
    def pitch(self) -> PitchModel:
        if self._pitch is None:
            with self._lock:
                if self._pitch is None:
                    if self._pitch_loader is None:
                        raise VoiceError("no pitch estimator configured")
                    self._pitch = self._pitch_loader()
        return self._pitch

    def autocast_context(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def close(self) -> None:
        with self._lock:
            self._content = None
            self._pitch = None


# --------------------------------------------------------------------------------------
# Noise per absolute position
# --------------------------------------------------------------------------------------


class NoiseTape:
    """Standard normal noise indexed by absolute position: the same index, the same value.

    Blocks that overlap (left context, crossfade) therefore see the same random draws where
    they overlap, and so does whole-utterance conversion with the same seed. Noise is drawn
    in chunks, each from its own seed sequence (seed, kind, chunk index); a few are cached.
    """

    FRAME_CHUNK = 256  # frames of prior noise per chunk
    SAMPLE_CHUNK = 16384  # samples of excitation noise per chunk
    CACHE = 16

    def __init__(self, seed: int, channels: int, hop: int) -> None:
        self.seed = int(seed) & 0xFFFFFFFF
        self.channels = channels
        self.hop = hop
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def _chunk(self, kind: int, index: int, width: int, size: int) -> np.ndarray:
        key = (kind, index)
        chunk = self._cache.get(key)
        if chunk is None:
            seq = np.random.SeedSequence([self.seed, kind, index & 0xFFFFFFFF, (index >> 32) & 0xFFFFFFFF])
            chunk = np.random.default_rng(seq).standard_normal((width, size), dtype=np.float32)
            self._cache[key] = chunk
            if len(self._cache) > self.CACHE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return chunk

    def _span(self, kind: int, start: int, length: int, width: int, size: int) -> np.ndarray:
        out = np.empty((width, length), dtype=np.float32)
        pos = 0
        while pos < length:
            index, offset = divmod(start + pos, size)
            take = min(size - offset, length - pos)
            out[:, pos : pos + take] = self._chunk(kind, index, width, size)[:, offset : offset + take]
            pos += take
        return out

    def frames(self, start: int, length: int) -> torch.Tensor:
        """Prior noise for frames ``[start, start+length)``: ``[1, channels, length]``."""
        return torch.from_numpy(self._span(0, start, length, self.channels, self.FRAME_CHUNK))[None]

    def samples(self, start_frame: int, frames: int) -> torch.Tensor:
        """Excitation noise for the samples of frames ``[start, start+frames)``: ``[1, n, 1]``."""
        span = self._span(1, start_frame * self.hop, frames * self.hop, 1, self.SAMPLE_CHUNK)
        return torch.from_numpy(span).reshape(1, -1, 1)


# --------------------------------------------------------------------------------------
# Loudness, crossfade
# --------------------------------------------------------------------------------------


def frame_rms(x: np.ndarray, centers: np.ndarray, frame: int) -> np.ndarray:
    """RMS of ``x`` over ``frame`` samples centred on each of ``centers`` (zeros outside ``x``)."""
    cs = np.concatenate(([0.0], np.cumsum(np.square(x, dtype=np.float64))))
    lo = np.clip(centers - frame // 2, 0, len(x))
    hi = np.clip(centers + frame // 2, 0, len(x))
    return np.sqrt(np.maximum(cs[hi] - cs[lo], 0.0) / frame)


def rms_mix(
    out: np.ndarray, audio16k: np.ndarray, first_frame: int, frames: int, hop: int, rate: float
) -> np.ndarray:
    """RVC's RMS mix: scale ``out`` (``frames`` frames at the model rate) by
    ``rms_in^(1−rate) · rms_out^(rate−1)``; ``rms_in`` is measured on ``audio16k`` frames
    ``first_frame…`` with its real neighbours. 40 ms frames, 10 ms hop, linear in between.

    This is the realtime GUI's formula (``gui_v1.py``), not the WebUI pipeline's
    ``change_rms`` (1 s frames every 0.5 s, floor 1e-6): frames of 1 s cannot follow syllables
    inside a 0.24–2 s block and would make a block's gain depend on where the block boundaries
    fall (streamed output would no longer match whole-utterance output), and the 1e-3 floor
    keeps near-silent decoder hiss from being raised to the input's loudness.
    """
    if rate >= 1.0 or frames <= 0:
        return out
    k = np.arange(frames + 1)
    rms_in = frame_rms(audio16k, (first_frame + k) * HOP_16K, 4 * HOP_16K)
    rms_out = frame_rms(out, k * hop, 4 * hop)
    pos = np.arange(frames * hop) / hop
    rms_in = np.interp(pos, k, rms_in)
    rms_out = np.maximum(np.interp(pos, k, rms_out), RMS_FLOOR)
    gain = np.power(rms_in, 1.0 - rate) * np.power(rms_out, rate - 1.0)
    return (out * gain).astype(np.float32)


def fade_in_window(n: int) -> np.ndarray:
    """sin² ramp from 0 to 1 over ``n`` samples (RVC's ``fade_in_window``)."""
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    return (np.sin(0.5 * np.pi * np.linspace(0.0, 1.0, n)) ** 2).astype(np.float32)


def sola_offset(tail: np.ndarray, head: np.ndarray, search: int) -> int:
    """Offset in ``[0, search]`` where ``head`` best continues ``tail`` (normalised correlation)."""
    n = len(tail)
    if n == 0 or search <= 0 or not np.any(tail):
        return 0
    seg = head[: n + search].astype(np.float64)
    nom = np.correlate(seg, tail.astype(np.float64), mode="valid")
    energy = np.concatenate(([0.0], np.cumsum(seg * seg)))
    den = np.sqrt(energy[n:] - energy[:-n] + 1e-8)
    return int(np.argmax(nom / den))


# --------------------------------------------------------------------------------------
# A loaded voice
# --------------------------------------------------------------------------------------


class RVCVoice:
    """One voice on one device: synthesizer + optional feature index + the shared models."""

    def __init__(
        self,
        name: str,
        synthesizer: Synthesizer,
        checkpoint: VoiceCheckpoint,
        models: DeviceModels,
        index: Any | None = None,
    ) -> None:
        self.name = name
        self.synth = synthesizer
        self.models = models
        self.index = index
        self.version = checkpoint.version
        self.f0 = checkpoint.f0
        self.sample_rate = checkpoint.sample_rate
        self.hop = checkpoint.hop_length
        self.speakers = checkpoint.speakers
        self.description = checkpoint.describe()
        if self.hop * 100 != self.sample_rate:
            raise CheckpointError(checkpoint.path, f"hop {self.hop} does not give 100 frames/s at {self.sample_rate} Hz")
        self.inter_channels = int(self.synth.inter_channels)
        if index is not None and getattr(index, "dim", None) not in (None, checkpoint.content_dim):
            raise CheckpointError(
                getattr(index, "path", None) or checkpoint.path,
                f"index holds {index.dim}-d features but the voice is {self.version} ({checkpoint.content_dim}-d)",
            )

    @property
    def device(self) -> torch.device:
        return self.models.device

    # ---- pitch ---------------------------------------------------------------------------

    def estimate_f0(self, audio16k: np.ndarray) -> np.ndarray:
        """Raw f0 (Hz, 0 = unvoiced) for ``len(audio) // 160 + 1`` frames."""
        with self.models.autocast_context():
            f0 = self.models.pitch.f0(np.ascontiguousarray(audio16k, dtype=np.float32))
        f0 = np.asarray(f0, dtype=np.float32)
        want = len(audio16k) // HOP_16K + 1
        if len(f0) < want:
            f0 = np.pad(f0, (0, want - len(f0)))
        return f0[:want]

    # ---- the chain -----------------------------------------------------------------------

    def _features(self, audio16k: np.ndarray, frames: int, f0: np.ndarray | None, params: ConversionParams) -> torch.Tensor:
        """Content features at 100 fps for ``frames`` frames, retrieval and protect applied."""
        models = self.models
        x = torch.from_numpy(np.ascontiguousarray(audio16k, dtype=np.float32)).to(models.device)
        with models.autocast_context():
            feats = models.content.extract(x, self.version)  # [1, F, C], 50 fps
        feats = feats.to(device=models.device, dtype=models.dtype)
        raw = None
        if self.index is not None and params.index_rate > 0:
            use_protect = self.f0 and f0 is not None and params.protect < 0.5
            raw = feats if use_protect else None
            blended = self.index.blend(feats[0].float().cpu().numpy(), params.index_rate)
            feats = torch.from_numpy(np.ascontiguousarray(blended, dtype=np.float32)).to(models.device, models.dtype)[None]
        feats = _upsample_frames(feats, frames)
        if raw is not None:
            raw = _upsample_frames(raw, frames)
            voiced = torch.from_numpy(f0[:frames] > 0).to(models.device)
            mask = torch.where(voiced, 1.0, params.protect).to(feats.dtype)[None, :, None]
            feats = feats * mask + raw * (1 - mask)
        return feats

    def convert_window(
        self,
        audio16k: np.ndarray,
        f0: np.ndarray | None,
        params: ConversionParams,
        *,
        head: int | None = None,
        length: int | None = None,
        phase: float = 0.0,
        noise: NoiseTape | None = None,
        first_frame: int = 0,
    ) -> np.ndarray:
        """Convert one window of 16 kHz audio; return frames ``[head, head+length)`` (all
        frames without ``head``) at the model rate, RMS-mixed.

        ``f0``: shifted f0 (Hz) per frame of the window (at least ``len // 160`` values).
        ``phase``: excitation phase (cycles) at frame ``head`` (at 0 without ``head``).
        ``noise``/``first_frame``: noise tape and the absolute frame of the window start.
        """
        frames = len(audio16k) // HOP_16K
        if frames < 3 or len(audio16k) < CONTENT_WINDOW_16K:
            raise ValueError(f"window too short: {len(audio16k)} samples")
        models = self.models
        device = models.device
        if self.f0:
            if f0 is None:
                raise ValueError("this voice needs f0")
            f0 = np.asarray(f0[:frames], dtype=np.float32)
        feats = self._features(audio16k, frames, f0 if self.f0 else None, params)
        lengths = torch.tensor([frames], device=device)
        sid = torch.tensor([params.speaker_id], device=device)
        first = 0 if head is None else head
        count = frames if head is None else int(length)
        kwargs: dict[str, Any] = {"noise_scale": params.noise_scale}
        if noise is not None and params.noise_scale:
            kwargs["z_noise"] = noise.frames(first_frame, frames).to(device)
        if self.f0:
            pitch = torch.from_numpy(f0_to_coarse(f0)).to(device)[None]
            pitchf = torch.from_numpy(f0).to(device)[None]
            kwargs["source_noise_scale"] = 1.0 if params.source_noise else 0.0
            kwargs["phase"] = phase
            if noise is not None and params.source_noise:
                kwargs["source_noise"] = noise.samples(first_frame + first, count).to(device)
            args: tuple[Any, ...] = (feats, lengths, pitch, pitchf, sid)
        else:
            args = (feats, lengths, sid)
        with torch.inference_mode(), models.autocast_context():
            if head is None:
                audio = self.synth.infer(*args, **kwargs)[0]
            else:
                audio = self.synth.infer(*args, head, count, **kwargs)[0]
        out = audio[0, 0].float().cpu().numpy()
        return rms_mix(out, audio16k, first, count, self.hop, params.rms_mix_rate)

    def convert(
        self,
        audio16k: np.ndarray,
        params: ConversionParams,
        *,
        pitch_shift: float = 0.0,
        layout: StreamLayout | None = None,
    ) -> np.ndarray:
        """Whole-utterance conversion (the reference that streaming matches away from the edges).

        The utterance gets the stream's silence before it (``layout.lead``) and zero right
        padding, is converted
        in one window, and is returned at the model rate, ``len · rate / 16000`` samples long.
        Memory grows with the square of the length (attention): meant for short utterances.
        """
        layout = layout or StreamLayout()
        audio16k = np.asarray(audio16k, dtype=np.float32)
        n = len(audio16k)
        frames = -(-n // HOP_16K)
        tail = layout.crossfade + layout.search + layout.lookahead + 2
        lead = layout.lead
        padded = np.concatenate(
            [np.zeros(lead * HOP_16K, np.float32), audio16k,
             np.zeros((frames + tail) * HOP_16K - n, np.float32)]
        )  # fmt: skip
        noise = NoiseTape(_seed(params), self.inter_channels, self.hop)
        with self.models.compute:
            f0 = shift_f0(self.estimate_f0(padded), pitch_shift) if self.f0 else None
            out = self.convert_window(padded, f0, params, noise=noise, first_frame=-lead)
        start = lead * self.hop
        return out[start : start + round(n * self.hop / HOP_16K)]


def _upsample_frames(feats: torch.Tensor, frames: int) -> torch.Tensor:
    """50 → 100 fps (nearest), then exactly ``frames`` frames (repeat the last if short)."""
    feats = feats.repeat_interleave(2, dim=1)
    if feats.shape[1] < frames:
        feats = torch.cat([feats, feats[:, -1:].expand(-1, frames - feats.shape[1], -1)], dim=1)
    return feats[:, :frames]


def _seed(params: ConversionParams) -> int:
    if params.seed is not None:
        return params.seed
    return int(np.random.SeedSequence().generate_state(1)[0])


# --------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------


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
        self._noise = NoiseTape(_seed(self.params), self.voice.inter_channels, self._hop)
        self._paused = False  # input_paused() until new input: held audio may go in a smaller block
        if self.pacer is not None:
            self.pacer.restart()

    def push(self, audio: np.ndarray) -> np.ndarray:
        x = _mono(audio)
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


def _mono(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] <= 2 else x.mean(axis=0)
    if x.ndim != 1:
        raise VoiceError(f"expected mono audio, got shape {np.shape(audio)}")
    return np.ascontiguousarray(x)


# --------------------------------------------------------------------------------------
# Voice cache and the converter
# --------------------------------------------------------------------------------------


class VoiceCache:
    """Thread-safe LRU of loaded voices. A voice is loaded once even if several sessions ask
    for it at the same moment; evicted voices stay alive while streams still use them."""

    def __init__(self, capacity: int, loader: Callable[[str], RVCVoice]) -> None:
        self.capacity = max(1, int(capacity))
        self._loader = loader
        self._items: OrderedDict[str, RVCVoice] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> RVCVoice:
        with self._lock:
            voice = self._items.get(name)
            if voice is not None:
                self._items.move_to_end(name)
                return voice
            gate = self._loading.setdefault(name, threading.Lock())
        with gate:
            with self._lock:
                voice = self._items.get(name)
                if voice is not None:
                    self._items.move_to_end(name)
                    return voice
            try:
                voice = self._loader(name)
            finally:
                with self._lock:
                    self._loading.pop(name, None)
            with self._lock:
                self._items[name] = voice
                self._items.move_to_end(name)
                while len(self._items) > self.capacity:
                    evicted, _ = self._items.popitem(last=False)
                    log.info("voice %s evicted from the cache", evicted)
            return voice

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __iter__(self) -> Iterator[RVCVoice]:
        with self._lock:
            return iter(list(self._items.values()))


_SHARED_LOCK = threading.Lock()
_SHARED_MODELS: dict[tuple[Any, ...], DeviceModels] = {}


def shared_device_models(
    device: torch.device,
    dtype: torch.dtype,
    autocast: torch.dtype | None,
    content_path: Path,
    pitch_method: str,
    models_dir: Path,
    *,
    pitch_fallback: bool = True,
    concurrency: int = 1,
) -> DeviceModels:
    """One :class:`DeviceModels` per (device, precision, weights): converters share them."""
    key = (str(device), dtype, autocast, str(content_path), pitch_method, str(models_dir))
    with _SHARED_LOCK:
        models = _SHARED_MODELS.get(key)
        if models is None:

            def content() -> ContentModel:
                from bridge.vc.content import ContentEncoder

                log.info("loading content encoder %s on %s", content_path, device)
                return ContentEncoder.load(content_path, device, dtype)

            def pitch() -> PitchModel:
                from bridge.vc.pitch import load_pitch_estimator

                return load_pitch_estimator(pitch_method, models_dir, device, fallback=pitch_fallback)

            models = DeviceModels(
                device, dtype, autocast=autocast, content_loader=content, pitch_loader=pitch, concurrency=concurrency
            )
            _SHARED_MODELS[key] = models
        return models


class RVCConverter(VoiceConverter):
    """The RVC stage: voices from ``<voices dir>/<name>/`` on one device, shared by sessions.

    ``models`` replaces the shared per-device models (tests and benchmarks inject stubs or
    randomly initialised full-size models through it).
    """

    def __init__(self, settings: RVCSettings, engines: EngineSettings, *, models: DeviceModels | None = None) -> None:
        self.settings = settings
        self.voices_dir = settings.voices_folder(engines.models_dir)
        device = models.device if models is not None else resolve_device(engines.device)
        defaults = DeviceDefaults.for_device(device)
        self.pitch_method = str(_or_default(settings.pitch_method, defaults.pitch_method))
        if models is None:
            dtype, autocast = resolve_precision(settings.precision, device)
            from bridge.vc.content import default_content_model_path

            content_path = settings.content_model or default_content_model_path(engines.models_dir)
            models = shared_device_models(
                device, dtype, autocast, Path(content_path), self.pitch_method,
                engines.models_dir, pitch_fallback=settings.pitch_fallback,
                concurrency=settings.device_concurrency,
            )  # fmt: skip
        self.models = models
        if settings.threads > 0 and models.device.type == "cpu":
            torch.set_num_threads(settings.threads)
        self.params = ConversionParams(
            index_rate=settings.index_rate,
            protect=settings.protect,
            rms_mix_rate=settings.rms_mix_rate,
            noise_scale=settings.noise_scale,
            speaker_id=settings.speaker_id,
        )
        block_seconds = float(_or_default(settings.block_seconds, defaults.block_seconds))
        self.layout = StreamLayout.from_seconds(
            block=block_seconds,
            crossfade=settings.crossfade_seconds,
            context=float(_or_default(settings.context_seconds, defaults.context_seconds)),
            lookahead=settings.lookahead_seconds,
            start_context=settings.start_context_seconds,
            step=settings.block_step_seconds,
            first_block=min(float(_or_default(settings.first_block_seconds, defaults.first_block_seconds)), block_seconds),
        )
        self.paced = settings.paced_blocks
        self.require_index = settings.require_index
        self.fold = settings.fold_weight_norm
        self.cache = VoiceCache(settings.voice_cache, self._load_voice)

    # ---- voices ----------------------------------------------------------------------------

    def voices(self) -> list[str]:
        if not self.voices_dir.is_dir():
            return []
        return sorted(
            d.name for d in self.voices_dir.iterdir() if d.is_dir() and not d.name.startswith(".") and any(d.glob("*.pth"))
        )

    def voice_files(self, name: str) -> tuple[Path, Path | None]:
        """The voice's ``.pth`` and its ``.index`` (``added_*`` preferred), or VoiceError."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise VoiceError(f"bad voice name {name!r}")
        directory = self.voices_dir / name
        if not directory.is_dir():
            known = ", ".join(self.voices()) or "none"
            raise VoiceError(f"unknown voice {name!r} (voices in {self.voices_dir}: {known})")
        pths = sorted(directory.glob("*.pth"))
        if not pths:
            raise VoiceError(f"voice {name!r}: no .pth file in {directory}")
        if len(pths) > 1:
            raise VoiceError(f"voice {name!r}: {len(pths)} .pth files in {directory} ({', '.join(p.name for p in pths)}); keep one")
        indexes = sorted(
            (p for p in directory.glob("*.index") if not p.name.startswith("trained_")),
            key=lambda p: (not p.name.startswith("added_"), p.name),
        )
        return pths[0], (indexes[0] if indexes else None)

    def load_voice(self, name: str) -> RVCVoice:
        """The voice from the cache, loading it (once) if needed."""
        return self.cache.get(name)

    def _load_voice(self, name: str) -> RVCVoice:
        pth, index_path = self.voice_files(name)
        return load_voice(
            name, pth, self.models, index_path=index_path, use_index=self.params.index_rate > 0,
            require_index=self.require_index, fold=self.fold,
        )  # fmt: skip

    # ---- streams ---------------------------------------------------------------------------

    def open_stream(
        self,
        voice: str,
        input_rate: int,
        pitch_shift: float = 0.0,
        *,
        cancel: CancelToken | None = None,
        params: ConversionParams | None = None,
        layout: StreamLayout | None = None,
        listener: ListenerClock | None = None,
    ) -> RVCStream:
        """A stream into ``voice``. ``listener``: the session's listener clock, which paced
        blocks are sized by (see bridge.vc.pacing); None: the stream keeps one of its own."""
        loaded = self.load_voice(voice)
        params = params or self.params
        if not 0 <= params.speaker_id < loaded.speakers:
            raise VoiceError(f"voice {voice!r} has {loaded.speakers} speaker(s); speaker id {params.speaker_id} is out of range")
        layout = layout or self.layout
        pacer = None
        if self.paced:
            pacer = BlockPacer(
                layout.first_block or layout.block, layout.block, layout.context, step=layout.step, listener=listener
            )
        return RVCStream(
            loaded, input_rate, pitch_shift=pitch_shift, params=params, layout=layout, cancel=cancel, pacer=pacer
        )

    def convert(
        self, voice: str, audio: np.ndarray, input_rate: int, pitch_shift: float = 0.0,
        *, params: ConversionParams | None = None,
    ) -> tuple[np.ndarray, int]:  # fmt: skip
        """Whole-utterance conversion (short clips): ``(audio at the model rate, rate)``."""
        loaded = self.load_voice(voice)
        x = _mono(audio)
        if input_rate != SR_16K:
            import soxr

            x = soxr.resample(x, input_rate, SR_16K, quality="HQ").astype(np.float32)
        out = loaded.convert(x, params or self.params, pitch_shift=pitch_shift, layout=self.layout)
        return out, loaded.sample_rate

    def warm(self, voice: str) -> None:
        # A short clip through the whole chain loads the voice, the content encoder and the
        # pitch estimator, and runs each once (first calls allocate and pick kernels).
        self.convert(voice, np.zeros(SR_16K // 2, np.float32), SR_16K)
        # Then one streaming block of each size the streams will use: kernels are set up per
        # input shape, and a set-up in the middle of an utterance is a gap (StreamLayout.step).
        loaded = self.load_voice(voice)
        for size in self.warm_sizes():
            stream = RVCStream(loaded, SR_16K, params=self.params, layout=replace(self.layout, first_block=size))
            stream.push(np.zeros((size + self.layout.latency_frames) * HOP_16K, np.float32))

    def warm_sizes(self) -> tuple[int, ...]:
        """The block sizes :meth:`warm` runs (setting ``rvc_warm_block_sizes``)."""
        mode = self.settings.warm_block_sizes
        if mode == "auto":
            per_size = self.models.device.type == "cpu" and self.models.autocast == torch.bfloat16
            mode = "all" if per_size else "edges"
        if mode == "all":
            return self.layout.sizes
        return tuple(sorted({self.layout.block_at(0), self.layout.block}))

    def info(self) -> dict[str, Any]:
        return {
            "voices": self.voices(),
            "loaded": {v.name: v.description for v in self.cache},
            "device": str(self.models.device),
            "dtype": str(self.models.dtype).removeprefix("torch."),
            "autocast": str(self.models.autocast).removeprefix("torch.") if self.models.autocast else None,
            "pitch_method": self.pitch_method,
            "block_ms": self.layout.block * 10,
            "context_ms": self.layout.context * 10,
            "first_block_ms": self.layout.block_at(0) * 10,
            "block_step_ms": self.layout.step * 10,
            "start_context_ms": self.layout.lead * 10,
            "paced_blocks": self.paced,
            "latency_ms": (self.layout.block_at(0) + self.layout.latency_frames) * 10,
        }

    def close(self) -> None:
        self.cache.clear()


def load_voice(
    name: str,
    pth: Path,
    models: DeviceModels,
    *,
    index_path: Path | None = None,
    use_index: bool = True,
    require_index: bool = False,
    fold: bool = True,
) -> RVCVoice:
    """Read a voice file (and its index) and build it on ``models``' device."""
    ckpt = read_checkpoint(pth)
    if index_path is not None and not Path(index_path).is_file():
        raise MissingIndexError(index_path, "the configured feature index does not exist")
    if index_path is None and require_index:
        raise MissingIndexError(pth, "no .index file next to the voice, and rvc_require_index is set")
    index = None
    if index_path is not None and use_index:
        from bridge.vc.retrieval import FeatureIndex

        index = FeatureIndex.load(index_path)
    synth = build_from_checkpoint(ckpt, models.device, models.dtype, fold=fold)
    voice = RVCVoice(name, synth, ckpt, models, index)
    log.info(
        "voice %s: %s %s %d Hz%s%s", name, ckpt.version, "f0" if ckpt.f0 else "nono", ckpt.sample_rate,
        f", index {Path(index_path).name}" if index is not None else "", f" on {models.device}",
    )  # fmt: skip
    return voice


def voice_latency_ms(layout: StreamLayout) -> float:
    """Audio a stream holds back before its first output, in milliseconds (compute not included)."""
    return (layout.block_at(0) + layout.latency_frames) * 10.0


__all__ = [
    "ConversionParams",
    "DeviceModels",
    "NoiseTape",
    "RVCConverter",
    "RVCStream",
    "RVCVoice",
    "StreamLayout",
    "VoiceCache",
    "load_voice",
    "resolve_device",
    "resolve_precision",
    "shared_device_models",
]
