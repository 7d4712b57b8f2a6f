"""Soprano has no alignment output: its words get estimated times (``bridge.words`` rule).

A tiny offline Soprano (tests/support/soprano_model.py, the ``chain`` kind: 12 audio tokens
for any text) streamed through the real pipeline: every word once, in order, marked
``estimated``, spread over the segment's measured sound in proportion to letters and digits.
"""

from __future__ import annotations


import pytest

from bridge.config import OUTPUT_SAMPLE_RATE
from bridge.engines import Engines
from bridge.pipeline import AudioOut, SessionOptions, SessionPipeline
from tests.conftest import make_settings
from tests.support.pipeline_words import all_words, speak
from tests.tts.test_soprano import _engine, model_dirs  # noqa: F401 - the tiny model folders

TEXT = "Hello there, it costs $3.14 today."


@pytest.fixture(scope="module")
def soprano(model_dirs):  # noqa: F811
    engine = _engine(model_dirs["chain"])
    yield engine
    engine.close()


async def test_soprano_words_are_estimated_over_the_measured_sound(soprano) -> None:
    assert not soprano.reports_words
    engines = Engines(settings=make_settings(tts="soprano"), tts=soprano)
    engines.loaded = True
    try:
        items = await speak(SessionPipeline(engines, SessionOptions(words=True)), TEXT)
    finally:
        engines.executor.shutdown(wait=True)
    words = all_words(items)
    samples = sum(item.samples for item in items if isinstance(item, AudioOut))
    assert [w.text for w in words] == TEXT.split()
    assert all(w.estimated for w in words)
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= samples / OUTPUT_SAMPLE_RATE for w in words), (words, samples / OUTPUT_SAMPLE_RATE)
    assert words[-1].end > words[0].start  # the sound was shared out, not left at one point
