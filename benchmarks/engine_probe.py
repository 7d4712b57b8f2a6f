"""The engine's own first-chunk time, in-process, for the text a peer spoke first.

Subtracted from a peer's first-segment token-to-sound it gives the serving overhead
(:mod:`benchmarks.metrics`). Runs after the servers have stopped, so nothing of ours competes
with it; each text is timed ``repeats`` times after one warm-up call and the best time kept:
the engine's own cost, which outside load can only lengthen (on a shared machine a median
still caught load spikes of several seconds and gave negative overheads).

* ``streaming``: the bridge's Piper engine with chunked decoding (what the bridge runs):
  time to the first decoded chunk.
* ``whole``: the same voice, each sentence decoded whole (what the naive server runs, one
  call per cut): time to the whole cut's audio.
* ``piper``: piper-tts's own ``PiperVoice.synthesize`` (what the RealtimeTTS peers call),
  time to its first sentence's audio.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from bridge.cancel import CancelToken

Probe = Callable[[str], float]


def _timed_first(chunks: Iterable[object]) -> float:
    started = time.perf_counter()
    for _ in chunks:
        return time.perf_counter() - started
    return time.perf_counter() - started


def make_probe(kind: str) -> Probe:
    """A function text → seconds to the engine's first audio for that text."""
    if kind in ("streaming", "whole"):
        from bridge.tts.piper import PiperEngine

        engine = PiperEngine(streaming=kind == "streaming")
        engine.load()
        if kind == "streaming":
            return lambda text: _timed_first(engine.stream(text, CancelToken()))

        def whole(text: str) -> float:
            started = time.perf_counter()
            engine.synthesize(text)
            return time.perf_counter() - started

        return whole
    if kind == "piper":
        from piper import PiperVoice

        from bridge.tts.piper import embedded_voice_paths

        model, config = embedded_voice_paths()
        voice = PiperVoice.load(str(model), config_path=str(config))
        return lambda text: _timed_first(voice.synthesize(text))
    raise ValueError(f"unknown probe {kind!r}")


def first_chunk_times(probe: Probe, texts: Iterable[str], repeats: int = 5) -> dict[str, float]:
    """Best seconds to first audio, of ``repeats`` timings, per distinct text."""
    out: dict[str, float] = {}
    warmed = False
    for text in texts:
        if text in out or not text.strip():
            continue
        if not warmed:
            probe(text)
            warmed = True
        out[text] = min(probe(text) for _ in range(max(1, repeats)))
    return out
