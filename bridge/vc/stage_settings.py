"""What the voice stage takes from the settings, read in one place.

:meth:`VoiceStageSettings.from_settings` is the only code that reads the ``rvc_*`` settings (and
the device and models folder they depend on); the rest of the stage takes this dataclass, so
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
    return Path(settings.rvc_voices_dir) if settings.rvc_voices_dir else Path(settings.models_dir) / "voices"


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
            models_dir=Path(settings.models_dir),
            voices_dir=voices_dir(settings),
            device=settings.device,
            precision=settings.rvc_precision,
            content_model=settings.rvc_content_model,
            pitch_method=None if settings.rvc_pitch_method == "auto" else settings.rvc_pitch_method,
            pitch_fallback=settings.rvc_pitch_fallback,
            device_concurrency=settings.rvc_device_concurrency,
            threads=settings.rvc_threads,
            index_rate=settings.rvc_index_rate,
            protect=settings.rvc_protect,
            rms_mix_rate=settings.rvc_rms_mix_rate,
            noise_scale=settings.rvc_noise_scale,
            speaker_id=settings.rvc_speaker_id,
            require_index=settings.rvc_require_index,
            fold_weight_norm=settings.rvc_fold_weight_norm,
            voice_cache=settings.rvc_voice_cache,
            block_seconds=settings.rvc_block_seconds,
            first_block_seconds=settings.rvc_first_block_seconds,
            block_step_seconds=settings.rvc_block_step_seconds,
            context_seconds=settings.rvc_context_seconds,
            crossfade_seconds=settings.rvc_crossfade_seconds,
            lookahead_seconds=settings.rvc_lookahead_seconds,
            start_context_seconds=settings.rvc_start_context_seconds,
            paced_blocks=settings.rvc_paced_blocks,
            warm_block_sizes=settings.rvc_warm_block_sizes,
        )
