"""Soprano engine: streaming, equivalence with the package's own output, defects kept away, batching.

All offline: the session fixture writes tiny random model folders (see ``soprano_model.py``)
and every engine is loaded through ``SopranoEngine.from_settings``.

Tolerance for "same audio": the streamed audio is decoded from windows of hidden states that
cover the decoder's whole receptive field, so it is mathematically the same as decoding the
whole sentence; what differs is float32 rounding (different convolution/GEMM shapes, batch
sizes and reduction orders). That measures ~1e-7 on a peak of ~0.08. ``ATOL`` = 1e-5 (about
1e-4 of the peak) leaves a 100× margin yet is ~10 000× below the error a one-token (64 ms)
misalignment causes, which the package's own streaming path shows.
"""

from __future__ import annotations

import contextlib
import io
import queue
import threading
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("soprano")

from bridge.cancel import CancelToken  # noqa: E402
from bridge.config import Settings  # noqa: E402
from bridge.tts.soprano import (  # noqa: E402
    SOPRANO_HF_FILES,
    SOPRANO_HF_REPO,
    SopranoEngine,
    prepare_text,
    token_cap,
)
from bridge.tts.soprano_scheduler import LOOKAHEAD, TOKEN_SAMPLES  # noqa: E402

from tests.support.soprano_model import build_model_dir  # noqa: E402

ATOL = 1e-5
CHAIN = 12  # audio tokens the chain model says for any text
# One sentence (no inner full stop), long enough that its own cap (32 + 3/char) exceeds 512.
LONG = (
    "this sentence keeps going and going, with many words and commas and clauses, so that "
    "the cap for its length ends up well above the hard limit of five hundred and twelve "
    "audio tokens, which both loops must honour in exactly the same way"
)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("soprano")
    dirs = {"random": build_model_dir(root / "random", "random", seed=1)}
    decoder = dirs["random"] / "decoder.pth"
    dirs["chain"] = build_model_dir(root / "chain", "chain", chain_length=CHAIN, decoder=decoder)
    dirs["stop_first"] = build_model_dir(root / "stop_first", "stop_first", decoder=decoder)
    return dirs


def from_settings(settings: Settings) -> SopranoEngine:
    """The engine as the server builds it: its own section, the engines section's device and folder."""
    return SopranoEngine.from_settings(settings.soprano, settings.engines)


def _engine(folder: Path, **overrides) -> SopranoEngine:
    settings = Settings(tts="soprano", device="cpu", soprano_model_dir=folder, **overrides)
    engine = from_settings(settings)
    engine.load()
    return engine


@pytest.fixture(scope="session")
def chain_engine(model_dirs):
    engine = _engine(model_dirs["chain"])
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def random_engine(model_dirs):
    engine = _engine(model_dirs["random"], soprano_max_batch=4)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def package_tts(model_dirs):
    from soprano.tts import SopranoTTS

    made = {}

    def get(kind: str):
        if kind not in made:
            # Skip the constructor's warm-up (it runs the random model to 512 tokens).
            with contextlib.redirect_stdout(io.StringIO()), mock.patch.object(SopranoTTS, "infer"):
                made[kind] = SopranoTTS(model_path=str(model_dirs[kind]), backend="transformers", device="cpu")
        return made[kind]

    return get


def _quiet(call, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return call(*args, **kwargs)


def _audio(engine: SopranoEngine, text: str, **kwargs) -> np.ndarray:
    chunks = [c.audio for c in engine.iter_chunks(text, CancelToken(), **kwargs)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


# ---------------------------------------------------------------------------------- settings


def test_settings_default_dir_and_env(tmp_path, monkeypatch):
    engine = from_settings(Settings(models_dir=tmp_path))
    assert engine.model_dir == tmp_path / "soprano"
    monkeypatch.setenv("VOICE_BRIDGE_SOPRANO_MODEL_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("VOICE_BRIDGE_SOPRANO_MAX_BATCH", "3")
    engine = from_settings(Settings())
    assert engine.model_dir == tmp_path / "elsewhere"
    assert engine.max_batch == 3


def test_missing_model_names_pull_command(tmp_path):
    engine = from_settings(Settings(models_dir=tmp_path, device="cpu"))
    with pytest.raises(FileNotFoundError, match="models pull soprano"):
        engine.load()


def test_hf_files_constant():
    assert SOPRANO_HF_REPO == "ekwek/Soprano-1.1-80M"
    names = {f["name"] for f in SOPRANO_HF_FILES}
    assert names == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "decoder.pth",
    }


def test_info(chain_engine):
    info = chain_engine.info()
    assert info["name"] == "soprano" and info["sample_rate"] == 32_000
    assert info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["scheduler"]["steps"] > 0  # warmed up at load


# ---------------------------------------------------------------------------------- streaming


def test_first_chunk_after_lookahead_then_one_per_token(chain_engine):
    chunks = list(chain_engine.iter_chunks("Hello there.", CancelToken(), chunk_tokens=1))
    assert chunks[0].tokens == LOOKAHEAD + 1  # 5 audio tokens, not the whole sentence
    assert chunks[0].audio.shape == (TOKEN_SAMPLES,)
    assert [c.tokens for c in chunks[:-1]] == list(range(LOOKAHEAD + 1, CHAIN + 1))
    assert chunks[-1].final and not any(c.final for c in chunks[:-1])
    assert sum(c.audio.size for c in chunks) == (CHAIN - 1) * TOKEN_SAMPLES
    assert all(c.audio.dtype == np.float32 and np.abs(c.audio).max() <= 1.0 for c in chunks)


def test_default_chunking_starts_early_then_doubles(chain_engine):
    chunks = list(chain_engine.iter_chunks("Hello there.", CancelToken()))  # chunk_tokens = 8
    assert chunks[0].tokens == LOOKAHEAD + 1
    # 11 intervals: 1 when 5 tokens exist, 2 at 7, 4 at 11, the last 4 when [STOP] comes.
    assert [c.audio.size // TOKEN_SAMPLES for c in chunks] == [1, 2, 4, 4]
    assert [c.tokens for c in chunks] == [5, 7, 11, 12]


def test_stream_equals_package_infer_chain(chain_engine, package_tts):
    """Concatenated stream ≈ the package's non-streamed ``infer`` (same hidden states, same decoder)."""
    text = "Hello there, this is a test of things."
    reference = _quiet(package_tts("chain").infer, text).numpy()
    for chunk_tokens in (1, 3, 8):
        ours = _audio(chain_engine, text, chunk_tokens=chunk_tokens)
        assert ours.shape == reference.shape
        assert np.abs(ours - reference).max() < ATOL
    # The package's transformers streaming path keeps each hidden state one token late.
    import torch

    theirs = torch.cat(list(_quiet(lambda: list(package_tts("chain").infer_stream(text))))).numpy()
    assert theirs.shape == reference.shape
    assert np.abs(theirs - reference).max() > 100 * ATOL


def test_stream_equals_package_infer_random(random_engine, package_tts, monkeypatch):
    """A model whose attention matters (ragged KV cache, repetition penalty), run to a cap by both loops."""
    cap = 96
    tts = package_tts("random")
    generate = tts.pipeline.model.generate

    def capped_generate(*args, **kwargs):  # the package hard-codes 512 new tokens: lower it here
        return generate(*args, **{**kwargs, "max_new_tokens": cap})

    monkeypatch.setattr(tts.pipeline.model, "generate", capped_generate)
    assert len(prepare_text(LONG)) == 1
    reference = _quiet(tts.infer, LONG).numpy()
    assert reference.size == (cap - 1) * TOKEN_SAMPLES
    ours = _audio(random_engine, LONG, max_tokens=cap)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < ATOL


def test_multi_sentence_text(chain_engine):
    text = "The first sentence is long enough to stand alone. The second one is also long enough."
    assert len(prepare_text(text)) == 2
    chunks = list(chain_engine.iter_chunks(text, CancelToken(), chunk_tokens=1))
    assert [c.sentence for c in chunks] == sorted(c.sentence for c in chunks)
    firsts = [next(c for c in chunks if c.sentence == s) for s in (0, 1)]
    assert all(c.tokens == LOOKAHEAD + 1 for c in firsts)
    assert sum(c.audio.size for c in chunks) == 2 * (CHAIN - 1) * TOKEN_SAMPLES


# ---------------------------------------------------------------------------------- defects


def test_stop_first_yields_nothing(model_dirs, package_tts):
    with pytest.raises(RuntimeError):  # the package crashes here
        _quiet(package_tts("stop_first").infer, "Hello there.")
    engine = _engine(model_dirs["stop_first"])
    try:
        assert list(engine.stream("Hello there.", CancelToken())) == []
        assert engine.synthesize("Two sentences here, long enough to be two. And another one, long too.").size == 0
    finally:
        engine.close()


@pytest.mark.parametrize("text", ["", "   ", "...", "!!!", "?!", "—", "🙂", "* _ ~", "\n\n"])
def test_nothing_to_say_yields_nothing(chain_engine, text):
    assert list(chain_engine.stream(text, CancelToken())) == []


def test_runaway_capped_relative_to_text(random_engine):
    text = "Hi there."
    (sentence,) = prepare_text(text)
    cap = token_cap(sentence, 512, 3.0)
    assert cap == 32 + 3 * len(sentence) < 512
    assert _audio(random_engine, text).size == (cap - 1) * TOKEN_SAMPLES


def test_runaway_hard_cap_setting(model_dirs):
    engine = _engine(model_dirs["random"], soprano_max_new_tokens=40)
    try:
        assert token_cap(prepare_text(LONG)[0], 10_000, 3.0) > 512
        assert engine.synthesize(LONG).size == (40 - 1) * TOKEN_SAMPLES
    finally:
        engine.close()


def test_no_stdout(model_dirs, capfd):
    engine = _engine(model_dirs["chain"])
    try:
        assert engine.synthesize("Hello there, how are you today?").size > 0
        assert list(engine.stream("...", CancelToken())) == []
    finally:
        engine.close()
    stop = _engine(model_dirs["stop_first"])
    try:
        assert list(stop.stream("Hello there.", CancelToken())) == []
    finally:
        stop.close()
    out, err = capfd.readouterr()
    assert out == ""
    assert "Loading weights" not in err  # no progress bars either


# ---------------------------------------------------------------------------------- cancel


def test_cancel_stops_within_one_step(random_engine):
    scheduler = random_engine._scheduler
    cancel = CancelToken()
    stream = random_engine.iter_chunks(LONG, cancel, chunk_tokens=1)
    next(stream)
    next(stream)
    cancel.cancel()
    tokens_at_cancel = scheduler.tokens
    assert list(stream) == []  # the consumer stops at once: nothing more is yielded
    deadline = time.monotonic() + 30  # a hang guard; the step count below is the assertion
    while scheduler.active and time.monotonic() < deadline:
        time.sleep(0.005)
    assert scheduler.active == 0
    assert scheduler.tokens - tokens_at_cancel <= 1  # at most the step already in flight


def test_stream_starts_generating_before_the_first_next(random_engine):
    """The pipeline calls stream() on its event loop and next() in a worker: work starts at once."""
    scheduler = random_engine._scheduler
    steps = scheduler.steps
    stream = random_engine.stream("Hello there, my friend.", CancelToken())
    deadline = time.monotonic() + 10
    while scheduler.steps < steps + LOOKAHEAD and time.monotonic() < deadline:
        time.sleep(0.005)
    assert scheduler.steps >= steps + LOOKAHEAD
    assert next(stream).size == TOKEN_SAMPLES
    stream.close()


def test_closing_the_generator_frees_the_slot(random_engine):
    scheduler = random_engine._scheduler
    stream = random_engine.stream(LONG, CancelToken())
    next(stream)
    stream.close()
    deadline = time.monotonic() + 5
    while scheduler.active and time.monotonic() < deadline:
        time.sleep(0.005)
    assert scheduler.active == 0


# ---------------------------------------------------------------------------------- batching


def test_concurrent_streams_match_solo_runs(random_engine):
    texts = ["Hi.", "Hello, my friend.", "Hi there."]  # caps 41, 83 and 59 tokens: ragged batch
    solo = [_audio(random_engine, t) for t in texts]
    assert [a.size // TOKEN_SAMPLES + 1 for a in solo] == [token_cap(prepare_text(t)[0], 512, 3.0) for t in texts]

    barrier = threading.Barrier(len(texts))
    results: queue.Queue = queue.Queue()

    def run(i: int) -> None:
        barrier.wait()
        results.put((i, _audio(random_engine, texts[i], chunk_tokens=4)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    together = dict(results.get_nowait() for _ in texts)
    assert random_engine._scheduler.max_batch_seen >= 2
    for i, audio in enumerate(solo):
        assert together[i].shape == audio.shape
        assert np.abs(together[i] - audio).max() < ATOL


# ---------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It is 01:15:30 now.", ["it is one hour fifteen minutes thirty seconds now."]),
        ("Use tools, e.g. hammers, i.e. things you hold.", ["use tools, for example hammers, that is things you hold."]),
        ("The U.S.A. is big and wide and full of people.", ["the u s a is big and wide and full of people."]),
        ("Go to www.example.com for all of the details.", ["go to w w w dot example dot com for all of the details."]),
        ("I have $3.50 in my pocket right now, friend.", ["i have three dollars, fifty cents in my pocket right now, friend."]),
        ("Short. Also short. But this one is a good deal longer.", ["short. also short. but this one is a good deal longer."]),
        ("See you on Jan. 5th at 3:30 pm, or so I am told.", ["see you on january fifth at three thirty p m, or so i am told."]),
        ("Cats vs. dogs is a debate as old as time itself.", ["cats versus dogs is a debate as old as time itself."]),
    ],
)
def test_prepare_text_fixes(text, expected):
    assert prepare_text(text) == expected


# ---------------------------------------------------------------------------------- pipeline


async def test_pipeline_speaks_with_soprano(chain_engine):
    """The session pipeline drives the engine: 32 kHz chunks in, 48 kHz frames out."""
    import asyncio

    from bridge.engines import Engines
    from bridge.pipeline import AudioOut, FlushedOut, SegmentOut, SessionOptions, SessionPipeline

    settings = Settings().unchecked(port=0, tts="soprano")
    engines = Engines(settings=settings, tts=chain_engine)
    engines.loaded = True
    pipeline = SessionPipeline(engines, SessionOptions(events=True))
    items = []
    try:
        for word in "Sure thing. Here is the first answer, and then a second one follows.".split(" "):
            pipeline.feed(word + " ")
        pipeline.flush()
        while not isinstance(item := await asyncio.wait_for(pipeline.next_output(), 60), FlushedOut):
            items.append(item)
    finally:
        await pipeline.close()
        engines.executor.shutdown(wait=True)
    segments = [i for i in items if isinstance(i, SegmentOut)]
    audio_seconds = sum(i.samples for i in items if isinstance(i, AudioOut)) / 48_000
    assert segments
    # Every segment is CHAIN tokens long: (CHAIN - 1) × 64 ms of speech each, pauses aside.
    assert audio_seconds >= 0.9 * len(segments) * (CHAIN - 1) * TOKEN_SAMPLES / 32_000
    assert item.segments == len(segments)


def test_models_pull_knows_every_soprano_file() -> None:
    """`voice-bridge models pull soprano` fetches exactly the files the engine loads."""
    from bridge.modelstore import default_manifest_path, load_manifest
    from bridge.tts.soprano import REQUIRED_FILES, SOPRANO_HF_FILES, SOPRANO_HF_REPO

    files = load_manifest(default_manifest_path()).select(["soprano"])
    names = {Path(f.name).name for f in files}
    assert names == {f["name"] for f in SOPRANO_HF_FILES} >= set(REQUIRED_FILES)
    assert all(SOPRANO_HF_REPO in f.url and "/soprano/" in f"/{f.name}" for f in files)
