"""The RVC voice stage's public names in one import (``from bridge.vc.rvc import RVCConverter``).

Each lives in the module of its concern: parameters and block geometry in
:mod:`bridge.vc.layout`, device and precision in :mod:`bridge.vc.device`, the models shared per
device in :mod:`bridge.vc.device_models`, the noise tape in :mod:`bridge.vc.noise`, RMS mix /
SOLA / fades in :mod:`bridge.vc.signal`, the voice and its chain in :mod:`bridge.vc.voice`,
streaming in :mod:`bridge.vc.stream`, the voice cache in :mod:`bridge.vc.cache` and the
converter in :mod:`bridge.vc.converter`.
"""

from __future__ import annotations

from bridge.vc.cache import VoiceCache
from bridge.vc.converter import RVCConverter
from bridge.vc.device import DeviceDefaults, resolve_device, resolve_precision
from bridge.vc.device_models import ContentModel, DeviceModels, PitchModel, shared_device_models
from bridge.vc.layout import HOP_16K, SR_16K, ConversionParams, StreamLayout
from bridge.vc.noise import NoiseTape
from bridge.vc.signal import RMS_FLOOR, fade_in_window, frame_rms, rms_mix, sola_offset
from bridge.vc.stream import RVCStream
from bridge.vc.voice import RVCVoice, load_voice

__all__ = [
    "HOP_16K",
    "RMS_FLOOR",
    "SR_16K",
    "ContentModel",
    "ConversionParams",
    "DeviceDefaults",
    "DeviceModels",
    "NoiseTape",
    "PitchModel",
    "RVCConverter",
    "RVCStream",
    "RVCVoice",
    "StreamLayout",
    "VoiceCache",
    "fade_in_window",
    "frame_rms",
    "load_voice",
    "resolve_device",
    "resolve_precision",
    "rms_mix",
    "shared_device_models",
    "sola_offset",
]
