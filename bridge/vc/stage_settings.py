"""What the voice stage takes from the settings, read in one place.

:meth:`VoiceStageSettings.from_settings` is the only code that reads the ``rvc`` section (and
the engines section's device and models folder they depend on); the rest of the stage takes this dataclass, so
its signature says what it depends on and each default stays declared once, in
:mod:`bridge.config`. No torch here: the server asks for the voices folder before it knows
whether the RVC extra is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bridge.config import Settings


def voices_dir(settings: Settings) -> Path:
    """The folder of voice folders: ``rvc_voices_dir``, else ``<models_dir>/voices``."""
    return Path(settings.rvc.voices_dir) if settings.rvc.voices_dir else Path(settings.engines.models_dir) / "voices"


@dataclass(frozen=True)
class VoiceStageSettings:
    """The voice stage's settings. ``None`` (and ``auto`` pitch) take the device's default
    (:class:`bridge.vc.device.DeviceDefaults`)."""

    models_dir: Path
    voices_dir: Path
    device: str
    precision: str
    content_model: Path | None
    pitch_method: str | None
    pitch_fallback: bool
    device_concurrency: int
    threads: int
    index_rate: float
    protect: float
    rms_mix_rate: float
    noise_scale: float
    speaker_id: int
    require_index: bool
    fold_weight_norm: bool
    voice_cache: int
    block_seconds: float | None
    first_block_seconds: float | None
    block_step_seconds: float
    context_seconds: float | None
    crossfade_seconds: float
    lookahead_seconds: float
    start_context_seconds: float | None
    paced_blocks: bool
    warm_block_sizes: str

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceStageSettings:
        return cls(
            models_dir=Path(settings.engines.models_dir),
            voices_dir=voices_dir(settings),
            device=settings.engines.device,
            precision=settings.rvc.precision,
            content_model=settings.rvc.content_model,
            pitch_method=None if settings.rvc.pitch_method == "auto" else settings.rvc.pitch_method,
            pitch_fallback=settings.rvc.pitch_fallback,
            device_concurrency=settings.rvc.device_concurrency,
            threads=settings.rvc.threads,
            index_rate=settings.rvc.index_rate,
            protect=settings.rvc.protect,
            rms_mix_rate=settings.rvc.rms_mix_rate,
            noise_scale=settings.rvc.noise_scale,
            speaker_id=settings.rvc.speaker_id,
            require_index=settings.rvc.require_index,
            fold_weight_norm=settings.rvc.fold_weight_norm,
            voice_cache=settings.rvc.voice_cache,
            block_seconds=settings.rvc.block_seconds,
            first_block_seconds=settings.rvc.first_block_seconds,
            block_step_seconds=settings.rvc.block_step_seconds,
            context_seconds=settings.rvc.context_seconds,
            crossfade_seconds=settings.rvc.crossfade_seconds,
            lookahead_seconds=settings.rvc.lookahead_seconds,
            start_context_seconds=settings.rvc.start_context_seconds,
            paced_blocks=settings.rvc.paced_blocks,
            warm_block_sizes=settings.rvc.warm_block_sizes,
        )
