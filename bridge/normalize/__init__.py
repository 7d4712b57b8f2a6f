"""Normalization: a segment's text → what the voice says, with a map back to the original.

Between the segmenter and the engine (:mod:`bridge.pipeline`), once per segment, before either
engine (Soprano's own cleaner then finds nothing left to expand). See :mod:`.normalizer`.
"""

from bridge.normalize.normalizer import (
    Normalizer,
    NormalizerConfig,
    normalizer_for,
    segment_notes,
    session_normalizer,
)
from bridge.normalize.spans import NormalizedText, Rewrite

__all__ = [
    "NormalizedText",
    "Normalizer",
    "NormalizerConfig",
    "Rewrite",
    "normalizer_for",
    "segment_notes",
    "session_normalizer",
]
