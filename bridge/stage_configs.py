"""The stages' own configs (segmenter, deadlines, pause shaping, the core's) built from the
settings' sections, for :class:`bridge.pipeline.SessionPipeline`.

Moved out of :mod:`bridge.pipeline` (which re-exports them); no logic changed.
"""

from __future__ import annotations

from bridge.audio.pauses import PauseConfig
from bridge.config import AudioSettings, SchedulerSettings, SegmenterSettings, Settings
from bridge.core import CoreConfig
from bridge.engines import Engines
from bridge.normalize import session_normalizer
from bridge.scheduler import DeadlinePolicy
from bridge.segmenter import SegmenterConfig


def segmenter_config(settings: SegmenterSettings) -> SegmenterConfig:
    return SegmenterConfig(
        max_chars=settings.segment_max_chars,
        first_min_words=settings.first_segment_min_words,
        first_max_words=settings.first_segment_max_words,
        pause_min_chars=settings.pause_min_chars,
        second_min_words=settings.second_segment_min_words,
        skip_code_blocks=settings.skip_code_blocks,
    )


def deadline_policy(settings: SchedulerSettings) -> DeadlinePolicy:
    return DeadlinePolicy(
        first_audio_target=settings.first_audio_target_ms / 1000,
        boundary_grace=settings.boundary_grace_ms / 1000,
    )


def core_config(settings: Settings, engines: Engines, max_utterance_seconds: float) -> CoreConfig:
    return CoreConfig(
        segmenter=segmenter_config(settings.segmenter),
        deadlines=deadline_policy(settings.scheduler),
        max_utterance_seconds=max_utterance_seconds,
        idle_flush_seconds=settings.segmenter.idle_flush_ms / 1000,
        default_voice=settings.rvc.default_voice,
        voice_conversion=engines.voice is not None,
        normalize=session_normalizer(settings.normalize, engines.tts),
        start_slot=engines.start_slot,
    )


def pause_config(settings: AudioSettings) -> PauseConfig:
    return PauseConfig(
        sentence_ms=settings.sentence_pause_ms,
        clause_ms=settings.clause_pause_ms,
        word_ms=settings.word_pause_ms,
        fade_ms=settings.fade_ms,
    )
