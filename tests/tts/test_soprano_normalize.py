"""Soprano's path: the bridge normalizes once, before the engine, and Soprano's own cleaner
(inflect/unidecode in the soprano-tts package) then finds nothing left to rewrite. Checked on
the text handed to the model (offline tiny model, as in test_soprano.py)."""

from __future__ import annotations

import asyncio
import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("soprano")

from benchmarks.normalize_bench import load_cases as load_corpus  # noqa: E402
from bridge.config import Settings  # noqa: E402
from bridge.engines import Engines  # noqa: E402
from bridge.normalize import Normalizer  # noqa: E402
from bridge.pipeline import FlushedOut, SessionOptions, SessionPipeline  # noqa: E402
from bridge.tts.soprano import SopranoEngine, prepare_text  # noqa: E402
from tests.support.soprano_model import build_model_dir  # noqa: E402

CASES = load_corpus()
NORMALIZE = Normalizer()


def words(text: str) -> list[str]:
    text = re.sub(r"\b([AP])M\b", r"\1 M", text)  # Soprano reads the normalizer's "AM" as "a m"
    return re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " ")).split()


#: What Soprano's cleaner still does to text the normalizer leaves alone (not a fight: its own
#: reading of initialisms, accents and letter-digit words).
SOPRANO_OWN = {"The v3 API is new.", "Café au lait, s'il vous plaît.", "The MP3 player broke."}


def test_soprano_cleaner_keeps_the_normalized_words() -> None:
    for _, text, expected in CASES:
        if text in SOPRANO_OWN:
            continue
        prompted = " ".join(prepare_text(NORMALIZE(text).spoken))
        assert words(prompted) == words(expected), (text, prompted)


def test_without_normalization_soprano_misreads_some() -> None:
    # The case for normalizing before Soprano: its cleaner alone gets these wrong.
    assert "four dollars, two cents million" in " ".join(prepare_text("They raised $4.2M last year, a record."))
    assert "ten minus fifteen minutes" in " ".join(prepare_text("Bake it for 10-15 minutes in the oven."))
    assert "minus nineteen" in " ".join(prepare_text("Is it COVID-19 related to this?"))


@pytest.fixture(scope="module")
def soprano(tmp_path_factory: pytest.TempPathFactory):
    folder = build_model_dir(tmp_path_factory.mktemp("soprano-norm") / "chain", "chain", chain_length=6)
    settings = Settings(tts="soprano", device="cpu", soprano_model_dir=folder)
    engine = SopranoEngine.from_settings(settings.soprano, settings.engines)
    engine.load()
    yield engine
    engine.close()


async def test_pipeline_prompts_soprano_with_the_normalized_words(soprano, monkeypatch) -> None:
    prompted: list[str] = []
    prepare = soprano._prepare

    def spy(text: str, cap: int):  # the scheduler thread turns a segment into prompts here
        prompted.extend(prepare_text(text))
        return prepare(text, cap)

    monkeypatch.setattr(soprano, "_prepare", spy)
    settings = Settings().unchecked(port=0, tts="soprano")
    engines = Engines(settings=settings, tts=soprano)
    engines.loaded = True
    text = "Dr. Patel paid $1,299.99 on 12/03/2026 at 7:05am, e.g. for 2.5 kg of rice."
    pipeline = SessionPipeline(engines, SessionOptions())
    try:
        for word in text.split(" "):
            pipeline.feed(word + " ")
        pipeline.flush()
        while not isinstance(await asyncio.wait_for(pipeline.next_output(), 60), FlushedOut):
            pass
    finally:
        await pipeline.close()
        engines.executor.shutdown(wait=True)
    assert words(" ".join(prompted)) == words(
        "Doctor Patel paid one thousand two hundred ninety nine dollars and ninety nine cents on December third "
        "twenty twenty six at seven oh five a m, for example for two point five kilograms of rice."
    )
