"""Layouts, parameters and helpers shared by the streaming tests (test_stream.py, test_pacing.py)."""

from __future__ import annotations

import numpy as np

from bridge.vc.layout import ConversionParams, StreamLayout
from bridge.vc.stream import RVCStream

HOP40 = 400  # samples per frame at 40 kHz

#: Every reach of the local chain covered: flow ±24 frames, decoder ≈ ±11, content/f0 edges.
EXACT = StreamLayout(block=20, crossfade=4, search=1, context=40, lookahead=40, dec_pad=12)
#: A realistic layout (short lookahead, small decoder padding).
REAL = StreamLayout(block=20, crossfade=4, search=1, context=40, lookahead=4, dec_pad=2)
#: No crossfade, no padding, no lookahead: blocks are butted together.
NAIVE = StreamLayout(block=20, crossfade=0, search=0, context=40, lookahead=0, dec_pad=0)

SEEDED = ConversionParams(seed=11)
QUIET = SEEDED.deterministic()


def stream_all(voice, x: np.ndarray, layout: StreamLayout, params: ConversionParams, chunk: int = 3000, rate: int = 16000) -> np.ndarray:
    stream = RVCStream(voice, rate, params=params, layout=layout)
    parts = [stream.push(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    parts.append(stream.flush())
    return np.concatenate(parts)


def interior(y: np.ndarray, layout: StreamLayout, hop: int) -> slice:
    """Away from the utterance edges: past the first crossfade, before the last block."""
    return slice((layout.crossfade + 2) * hop, len(y) - layout.block * hop)
