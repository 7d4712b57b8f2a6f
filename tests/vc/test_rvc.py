"""The conversion chain and streaming: exactness against whole-utterance conversion, joins,
lengths, pitch shift, cancel, the voice cache and the converter."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.cancel import CancelToken, Cancelled
from bridge.config import Settings
from bridge.vc.base import VoiceError
from bridge.vc.checkpoint import MissingIndexError
from bridge.vc.rvc import (
    ConversionParams,
    DeviceModels,
    RVCConverter,
    RVCStream,
    StreamLayout,
    VoiceCache,
    load_voice,
    sola_offset,
)

from .factories import save_voice
from .stubs import LocalContent, LocalPitch, record_blocks, speech_like

HOP40 = 400  # samples per frame at 40 kHz

#: Every reach of the local chain covered: flow ±24 frames, decoder ≈ ±11, content/f0 edges.
EXACT = StreamLayout(block=20, crossfade=4, search=1, context=40, lookahead=40, dec_pad=12)
#: A realistic layout (short lookahead, small decoder padding).
REAL = StreamLayout(block=20, crossfade=4, search=1, context=40, lookahead=4, dec_pad=2)
#: No crossfade, no padding, no lookahead: blocks are butted together.
NAIVE = StreamLayout(block=20, crossfade=0, search=0, context=40, lookahead=0, dec_pad=0)

SEEDED = ConversionParams(seed=11)
QUIET = SEEDED.deterministic()


@pytest.fixture(scope="session")
def models() -> DeviceModels:
    return DeviceModels(torch.device("cpu"), content_loader=LocalContent, pitch_loader=LocalPitch, concurrency=2)


@pytest.fixture(scope="session")
def voice_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("voices")
    return {
        "local": save_voice(root / "local" / "local.pth", "v2", True, "40k", n_layers=0, seed=1),
        "attn": save_voice(root / "attn" / "attn.pth", "v2", True, "40k", seed=1),
        "nono": save_voice(root / "nono" / "nono.pth", "v1", False, "32k", n_layers=0, seed=2),
        "v1f0": save_voice(root / "v1f0" / "v1f0.pth", "v1", True, "48k", n_layers=0, seed=3, dialect="applio"),
    }


@pytest.fixture(scope="session")
def voices(voice_files: dict[str, Path], models: DeviceModels):
    return {name: load_voice(name, path, models) for name, path in voice_files.items()}


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    return speech_like(1.6)


def stream_all(voice, x: np.ndarray, layout: StreamLayout, params: ConversionParams, chunk: int = 3000, rate: int = 16000) -> np.ndarray:
    stream = RVCStream(voice, rate, params=params, layout=layout)
    parts = [stream.push(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    parts.append(stream.flush())
    return np.concatenate(parts)


def interior(y: np.ndarray, layout: StreamLayout, hop: int) -> slice:
    """Away from the utterance edges: past the first crossfade, before the last block."""
    return slice((layout.crossfade + 2) * hop, len(y) - layout.block * hop)


@pytest.mark.parametrize("params", [QUIET, SEEDED], ids=["deterministic", "seeded-noise"])
def test_stream_equals_whole_utterance_with_local_models(voices, speech, params) -> None:
    voice = voices["local"]
    whole = voice.convert(speech, params, layout=EXACT)
    streamed = stream_all(voice, speech, EXACT, params)
    assert len(streamed) == len(whole) == len(speech) * 40000 // 16000
    inner = interior(streamed, EXACT, HOP40)
    assert np.sqrt(np.mean(whole[inner] ** 2)) > 0.01  # there is signal to compare
    assert np.max(np.abs(streamed[inner] - whole[inner])) < 1e-4


@pytest.mark.parametrize("name", ["nono", "v1f0"])
def test_stream_equals_whole_for_other_variants(voices, speech, name) -> None:
    voice = voices[name]
    hop = voice.hop
    whole = voice.convert(speech, QUIET, layout=EXACT)
    streamed = stream_all(voice, speech, EXACT, QUIET, chunk=1234)
    assert len(streamed) == len(whole) == round(len(speech) * hop / 160)
    inner = interior(streamed, EXACT, hop)
    assert np.max(np.abs(streamed[inner] - whole[inner])) < 1e-4


def test_pitch_segments_fill_the_estimators_padding(voice_files, speech) -> None:
    pitch = LocalPitch(frame_multiple=32)
    models = DeviceModels(torch.device("cpu"), content_loader=LocalContent, pitch_loader=lambda: pitch)
    voice = load_voice("local", voice_files["local"], models)
    streamed = stream_all(voice, speech, EXACT, QUIET)
    frames = [n // 160 + 1 for n in pitch.lengths]
    assert len(frames) > 3
    assert all(f % 32 == 0 for f in frames[2:])  # once enough audio is held
    whole = voice.convert(speech, QUIET, layout=EXACT)
    inner = interior(streamed, EXACT, HOP40)
    assert np.max(np.abs(streamed[inner] - whole[inner])) < 1e-4


def test_block_size_does_not_change_the_output(voices, speech) -> None:
    voice = voices["local"]
    a = stream_all(voice, speech, EXACT, SEEDED)
    other = StreamLayout(block=34, crossfade=4, context=40, lookahead=40, dec_pad=12, first_block=6)
    b = stream_all(voice, speech, other, SEEDED)
    inner = interior(a, EXACT, HOP40)
    assert np.max(np.abs(a[inner] - b[inner])) < 1e-4


def test_less_silence_before_the_utterance_keeps_stream_equal_to_whole(voices, speech, monkeypatch) -> None:
    # The first windows convert only ``start_context`` frames of the silence before the
    # utterance (cheaper: first audio sooner); whole-utterance conversion gets the same lead.
    voice = voices["local"]
    short = replace(EXACT, start_context=10)  # at least the decoder padding (12) is kept
    assert (short.lead, short.context_at(0), short.context_at(20), short.context_at(40)) == (12, 12, 32, 40)
    windows: list[int] = []
    convert_window = voice.convert_window
    monkeypatch.setattr(voice, "convert_window", lambda audio, *a, **k: windows.append(len(audio)) or convert_window(audio, *a, **k))
    streamed = stream_all(voice, speech, short, SEEDED)
    full = windows[:]
    windows.clear()
    stream_all(voice, speech, EXACT, SEEDED)
    latency = EXACT.latency_frames
    assert full[0] == (12 + EXACT.block + latency) * 160 and windows[0] == (40 + EXACT.block + latency) * 160
    assert full[2:-1] == windows[2:-1]  # past the start, every window has its full context
    monkeypatch.undo()
    whole = voice.convert(speech, SEEDED, layout=short)
    inner = interior(streamed, EXACT, HOP40)
    assert np.max(np.abs(streamed[inner] - whole[inner])) < 1e-4
    with pytest.raises(ValueError):
        StreamLayout(start_context=3)
    assert StreamLayout.from_seconds(context=0.5, start_context=2.0).lead == 50  # never past the context


def test_without_context_the_stream_differs(voices, speech) -> None:
    # The exactness above is not trivial: starve the flow of its context and it breaks.
    voice = voices["local"]
    whole = voice.convert(speech, QUIET, layout=EXACT)
    starved = StreamLayout(block=20, crossfade=4, context=0, lookahead=0, dec_pad=0)
    streamed = stream_all(voice, speech, starved, QUIET)
    inner = interior(streamed, EXACT, HOP40)
    assert np.max(np.abs(streamed[inner] - whole[inner])) > 1e-3


def test_realistic_layout_with_attention_stays_close_to_whole(voices, speech) -> None:
    voice = voices["attn"]  # 6 attention layers: every frame sees the whole window
    whole = voice.convert(speech, SEEDED, layout=REAL)
    streamed = stream_all(voice, speech, REAL, SEEDED)
    inner = interior(streamed, REAL, HOP40)
    err = streamed[inner] - whole[inner]
    snr = 10 * np.log10(np.mean(whole[inner] ** 2) / np.mean(err**2))
    assert snr > 30.0


def click_ratio(y: np.ndarray, joins: np.ndarray, hop: int, order: int = 1) -> float:
    """Largest high-pass value (``order``-th difference) within ±3 samples of a join, relative
    to the 99th percentile of the same in the 8 frames around it; joins in silence skipped."""
    jump = np.abs(np.diff(y, n=order, prepend=np.zeros(order, y.dtype)))
    ratios = []
    for j in joins:
        near = jump[j - 3 : j + 4].max()
        around = np.concatenate([jump[max(j - 8 * hop, 0) : j - 3], jump[j + 4 : j + 8 * hop]])
        base = np.percentile(around, 99)
        if base > 1e-3 ** order:
            ratios.append(near / base)
    assert len(ratios) >= 3, "too few joins in speech to judge"
    return float(max(ratios))


def test_no_click_at_joins(voices, speech) -> None:
    voice = voices["attn"]
    smooth = stream_all(voice, speech, REAL, SEEDED, chunk=777)
    butted = stream_all(voice, speech, NAIVE, SEEDED, chunk=777)
    joins = np.arange(1, len(smooth) // (20 * HOP40)) * 20 * HOP40
    # The detector fires on butted blocks (edge effects of each window meet head-on) …
    assert click_ratio(butted, joins, HOP40) > 2.0
    # … and stays at the level of ordinary samples with SOLA + crossfade.
    assert click_ratio(smooth, joins, HOP40) < 1.5
    rng = np.random.default_rng(0)
    elsewhere = rng.integers(8 * HOP40, len(smooth) - 8 * HOP40, 30)
    assert click_ratio(smooth, joins, HOP40) < 1.5 * max(click_ratio(smooth, elsewhere, HOP40), 0.5)


def test_crossfade_hides_disagreement_between_blocks(voices, monkeypatch) -> None:
    # A smooth stand-in "model": the window's input, upsampled, with a gain that differs
    # from call to call (as when each window draws its own noise or sees other context).
    voice = voices["local"]
    rng = np.random.default_rng(5)

    def jittery(audio16k, f0, params, *, head=None, length=None, **_):
        head = head or 0
        length = length if length is not None else len(audio16k) // 160 - head
        t = np.arange(length * HOP40) / HOP40 * 160 + head * 160
        y = np.interp(t, np.arange(len(audio16k)), audio16k)
        return (y * (1.0 + 0.3 * rng.standard_normal())).astype(np.float32)

    monkeypatch.setattr(voice, "convert_window", jittery)
    t = np.arange(24000) / 16000
    tone = (0.2 + 0.05 * np.sin(2 * np.pi * 1.1 * t)) * sum(
        np.sin(2 * np.pi * k * (150 * t + 3 * np.sin(2 * np.pi * 0.7 * t))) / k for k in range(1, 6)
    )
    tone = tone.astype(np.float32)
    smooth = stream_all(voice, tone, REAL, QUIET)
    butted = stream_all(voice, tone, NAIVE, QUIET)
    joins = np.arange(1, len(smooth) // (20 * HOP40)) * 20 * HOP40
    assert click_ratio(butted, joins, HOP40, order=3) > 3.0
    assert click_ratio(smooth, joins, HOP40, order=3) < 1.5


def test_push_chunking_does_not_matter(voices, speech) -> None:
    voice = voices["attn"]
    one = stream_all(voice, speech, REAL, SEEDED, chunk=len(speech))
    rng = np.random.default_rng(1)
    stream = RVCStream(voice, 16000, params=SEEDED, layout=REAL)
    parts, pos = [], 0
    while pos < len(speech):
        n = int(rng.choice([1, 17, 160, 999, 4000]))
        parts.append(stream.push(speech[pos : pos + n]))
        pos += n
    parts.append(stream.flush())
    assert np.array_equal(np.concatenate(parts), one)


def test_segments_pushed_across_boundaries_join_without_clicks(voices) -> None:
    # Two TTS segments back to back (the second starting mid-block) in one utterance.
    voice = voices["attn"]
    a, b = speech_like(0.73, seed=1), speech_like(0.81, seed=2)
    stream = RVCStream(voice, 16000, params=SEEDED, layout=REAL)
    y = np.concatenate([stream.push(a), stream.push(b), stream.flush()])
    assert len(y) == round((len(a) + len(b)) * 2.5)
    joins = np.arange(1, len(y) // (20 * HOP40)) * 20 * HOP40
    assert click_ratio(y, joins, HOP40) < 1.5


def test_resampled_input(voices, speech) -> None:
    import soxr

    voice = voices["local"]
    x22 = soxr.resample(speech, 16000, 22050).astype(np.float32)
    stream = RVCStream(voice, 22050, params=QUIET, layout=EXACT)
    y = np.concatenate([stream.push(x22[i : i + 2205]) for i in range(0, len(x22), 2205)] + [stream.flush()])
    assert stream.output_rate == 40000
    assert abs(len(y) - len(x22) * 40000 / 22050) <= 2
    ref = voice.convert(soxr.resample(x22, 22050, 16000).astype(np.float32), QUIET, layout=EXACT)
    inner = interior(ref, EXACT, HOP40)
    err = y[inner] - ref[inner]
    assert 10 * np.log10(np.mean(ref[inner] ** 2) / np.mean(err**2)) > 40


def test_latency_and_lengths(voices) -> None:
    voice = voices["local"]
    stream = RVCStream(voice, 16000, params=QUIET, layout=REAL)
    need = (REAL.block + REAL.latency_frames) * 160
    assert len(stream.push(np.zeros(need - 1, np.float32) + 0.1)) == 0
    first = stream.push(np.full(1, 0.1, np.float32))
    assert len(first) == REAL.block * HOP40
    rest = stream.flush()
    assert len(first) + len(rest) == need * 40000 // 16000
    for n in (0, 1, 159, 161, 4321):
        out = np.concatenate([stream.push(np.full(n, 0.05, np.float32)), stream.flush()])
        assert len(out) == round(n * 2.5)
    # A smaller first block: first audio sooner, then blocks growing to full size.
    layout = StreamLayout(block=20, context=40, lookahead=4, first_block=6, step=2)  # any size
    assert [layout.block_at(f) for f in (0, 6, 12, 24, 44)] == [6, 6, 12, 20, 20]
    quick = RVCStream(voice, 16000, params=QUIET, layout=layout)
    early = quick.push(np.full((6 + REAL.latency_frames) * 160, 0.1, np.float32))
    assert len(early) == 6 * HOP40
    assert len(quick.push(np.full(5 * 160, 0.1, np.float32))) == 0
    assert len(quick.push(np.full(160, 0.1, np.float32))) == 6 * HOP40
    assert len(quick.push(np.full(32 * 160, 0.1, np.float32))) == (12 + 20) * HOP40


def test_flush_resets_for_the_next_utterance(voices, speech) -> None:
    voice = voices["local"]
    stream = RVCStream(voice, 16000, params=SEEDED, layout=REAL)
    first = np.concatenate([stream.push(speech), stream.flush()])
    second = np.concatenate([stream.push(speech), stream.flush()])
    assert np.array_equal(first, second)
    assert abs(first[-1]) < 1e-3  # faded out at the end


def test_pitch_shift_mid_stream(voices, speech, monkeypatch) -> None:
    voice = voices["local"]
    seen: list[torch.Tensor] = []
    real = voice.synth.infer

    def spy(phone, lengths, pitch, nsff0, *args, **kwargs):
        seen.append(nsff0.clone())
        return real(phone, lengths, pitch, nsff0, *args, **kwargs)

    monkeypatch.setattr(voice.synth, "infer", spy)
    stream = RVCStream(voice, 16000, params=QUIET, layout=REAL)
    stream.push(speech[:8000])
    before = seen[-1]
    stream.set_pitch_shift(12.0)
    stream.push(speech[8000:16000])
    after = seen[-1]
    voiced_b, voiced_a = before[before > 0], after[after > 0]
    assert voiced_b.numel() and voiced_a.numel()
    assert 1.6 < float(voiced_a.median() / voiced_b.median()) < 2.5  # an octave up
    assert stream.pitch_shift == 12.0


def test_cancel_stops_between_blocks_and_reset_recovers(voices, speech) -> None:
    voice = voices["local"]
    token = CancelToken()
    stream = RVCStream(voice, 16000, params=QUIET, layout=REAL, cancel=token)
    stream.push(speech[:4000])
    token.cancel()
    with pytest.raises(Cancelled):
        stream.push(speech)
    stream.cancel = None
    stream.reset()
    fresh = RVCStream(voice, 16000, params=QUIET, layout=REAL)
    assert np.array_equal(
        np.concatenate([stream.push(speech), stream.flush()]), np.concatenate([fresh.push(speech), fresh.flush()])
    )


def test_concurrent_streams_share_the_models(voices, speech) -> None:
    voice = voices["attn"]
    expected = stream_all(voice, speech, REAL, SEEDED)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = stream_all(voice, speech, REAL, SEEDED, chunk=1000 + 100 * i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for y in results.values():
        assert np.array_equal(y, expected)


def test_sola_finds_the_continuation() -> None:
    rng = np.random.default_rng(0)
    sig = rng.standard_normal(3000).astype(np.float32)
    tail = sig[1000:1160]
    assert sola_offset(tail, sig[1000 - 0 :], 40) == 0
    assert sola_offset(tail, sig[1000 - 23 :], 40) == 23
    assert sola_offset(np.zeros(160, np.float32), sig, 40) == 0


def test_retrieval_and_protect(voices, voice_files, speech, tmp_path: Path) -> None:
    import faiss

    voice = voices["local"]
    target = np.full((1, 768), 0.5, np.float32)
    index = faiss.IndexFlatL2(768)
    index.add(np.repeat(target, 16, axis=0))
    path = tmp_path / "added_IVF1_Flat_nprobe_1_x_v2.index"
    faiss.write_index(index, str(path))
    from bridge.vc.retrieval import FeatureIndex

    indexed = load_voice("local", voice_files["local"], voice.models, index_path=path)
    frames = len(speech) // 160
    f0 = np.asarray(indexed.estimate_f0(speech), np.float32)
    full = indexed._features(speech, frames, f0, ConversionParams(index_rate=1.0, protect=0.5))
    assert torch.allclose(full, torch.full_like(full, 0.5), atol=1e-5)
    protected = indexed._features(speech, frames, f0, ConversionParams(index_rate=1.0, protect=0.2))
    raw = voice._features(speech, frames, f0, ConversionParams(index_rate=0.0))
    voiced = torch.from_numpy(f0[:frames] > 0)
    assert torch.allclose(protected[0, voiced], full[0, voiced], atol=1e-5)
    want = 0.2 * 0.5 + 0.8 * raw[0, ~voiced]
    assert torch.allclose(protected[0, ~voiced], want, atol=1e-5)
    assert isinstance(indexed.index, FeatureIndex)


def test_bf16_autocast_runs_and_stays_close(voice_files, speech) -> None:
    fp32 = DeviceModels(torch.device("cpu"), content_loader=LocalContent, pitch_loader=LocalPitch)
    bf16 = DeviceModels(torch.device("cpu"), autocast=torch.bfloat16, content_loader=LocalContent, pitch_loader=LocalPitch)
    a = load_voice("attn", voice_files["attn"], fp32).convert(speech, QUIET, layout=REAL)
    b = load_voice("attn", voice_files["attn"], bf16).convert(speech, QUIET, layout=REAL)
    snr = 10 * np.log10(np.mean(a**2) / np.mean((a - b) ** 2))
    assert 15 < snr < 120  # close, but really computed in another precision


# ---- voices, cache, converter -----------------------------------------------------------


def make_converter(root: Path, models: DeviceModels, **overrides) -> RVCConverter:
    settings = Settings(**{"models_dir": root, "rvc_block_seconds": 0.2, "rvc_context_seconds": 0.4, **overrides})
    return RVCConverter(settings, models=models)


def test_converter_lists_loads_and_streams(tmp_path: Path, models: DeviceModels, speech) -> None:
    save_voice(tmp_path / "voices" / "alice" / "alice.pth", "v2", True, "48k", n_layers=0)
    save_voice(tmp_path / "voices" / "bob" / "model.pth", "v1", False, "32k", n_layers=0)
    (tmp_path / "voices" / "empty").mkdir()
    conv = make_converter(tmp_path, models)
    assert conv.voices() == ["alice", "bob"]
    stream = conv.open_stream("alice", 16000, pitch_shift=-3)
    assert stream.output_rate == 48000 and stream.pitch_shift == -3
    y = np.concatenate([stream.push(speech), stream.flush()])
    assert len(y) == len(speech) * 3
    out, rate = conv.convert("bob", speech[:8000], 16000)
    assert rate == 32000 and len(out) == 16000
    info = conv.info()
    assert set(info["loaded"]) == {"alice", "bob"} and info["device"] == "cpu"
    with pytest.raises(VoiceError, match="unknown voice 'carol'"):
        conv.open_stream("carol", 16000)
    with pytest.raises(VoiceError, match="no .pth"):
        conv.open_stream("empty", 16000)
    with pytest.raises(VoiceError, match="bad voice name"):
        conv.open_stream("../alice", 16000)
    with pytest.raises(VoiceError, match="speaker id"):
        make_converter(tmp_path, models, rvc_speaker_id=7).open_stream("bob", 16000)


def test_warm_runs_each_block_size_the_streams_use(tmp_path: Path, models: DeviceModels, monkeypatch) -> None:
    save_voice(tmp_path / "voices" / "alice" / "alice.pth", "v2", True, "40k", n_layers=0)
    conv = make_converter(tmp_path, models, rvc_block_seconds=1.0, rvc_first_block_seconds=0.3)
    assert conv.layout.sizes == (20, 30, 40, 60, 80, 100)  # steps of 0.2 s, the first and the full block
    converted = record_blocks(monkeypatch)
    for mode, sizes in (("all", [20, 30, 40, 60, 80, 100]), ("edges", [30, 100])):
        converted.clear()
        conv.stage = replace(conv.stage, warm_block_sizes=mode)
        conv.warm("alice")
        assert converted == sizes, mode
    # auto: every size where kernels are set up per input shape (bf16 on a CPU), else the edges.
    conv.stage = replace(conv.stage, warm_block_sizes="auto")
    monkeypatch.setattr(conv.models, "autocast", torch.bfloat16)
    assert conv.warm_sizes() == conv.layout.sizes
    monkeypatch.setattr(conv.models, "autocast", None)
    assert conv.warm_sizes() == (30, 100)
    with pytest.raises(ValueError):
        Settings(rvc_warm_block_sizes="some")


def test_missing_index_when_required(tmp_path: Path, models: DeviceModels) -> None:
    save_voice(tmp_path / "voices" / "alice" / "alice.pth", "v2", True, "40k", n_layers=0)
    conv = make_converter(tmp_path, models, rvc_require_index=True)
    with pytest.raises(MissingIndexError, match="alice.pth.*no .index"):
        conv.open_stream("alice", 16000)
    with pytest.raises(MissingIndexError, match="gone.index"):
        load_voice("alice", tmp_path / "voices" / "alice" / "alice.pth", models, index_path=tmp_path / "gone.index")


def test_voice_cache_is_lru_and_loads_once(tmp_path: Path) -> None:
    calls: list[str] = []
    gate = threading.Event()

    def loader(name: str):
        calls.append(name)
        gate.wait(2)
        return object()

    cache = VoiceCache(2, loader)
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("a"))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert calls == ["a"] and len({id(v) for v in got}) == 1
    cache.get("b")
    cache.get("a")  # a becomes most recent
    cache.get("c")  # evicts b
    assert cache.loaded() == ["a", "c"]
    cache.get("b")
    assert calls == ["a", "b", "c", "b"]


def test_noise_tape_is_a_function_of_position() -> None:
    from bridge.vc.rvc import NoiseTape

    tape = NoiseTape(seed=3, channels=4, hop=10)
    a = tape.frames(-300, 700)  # crosses chunk borders and negative positions
    b = NoiseTape(seed=3, channels=4, hop=10).frames(-17, 50)
    assert torch.equal(a[:, :, 283:333], b)
    s1 = tape.samples(-5, 3000)
    s2 = tape.samples(1000, 7)
    assert torch.equal(s1[:, 1005 * 10 : 1012 * 10], s2)
    assert not torch.equal(NoiseTape(seed=4, channels=4, hop=10).frames(0, 10), tape.frames(0, 10))
    assert abs(float(a.std()) - 1.0) < 0.05


def test_auto_precision(monkeypatch) -> None:
    from bridge.vc import device as rvc

    cpu = torch.device("cpu")
    monkeypatch.setattr(rvc, "cpu_has_native_bf16", lambda: True)
    assert rvc.resolve_precision("auto", cpu) == (torch.float32, torch.bfloat16)
    monkeypatch.setattr(rvc, "cpu_has_native_bf16", lambda: False)
    assert rvc.resolve_precision("auto", cpu) == (torch.float32, None)
    assert rvc.resolve_precision("auto", torch.device("cuda")) == (torch.float16, None)
    assert rvc.resolve_precision("fp32", cpu) == (torch.float32, None)
    with pytest.raises(VoiceError, match="fp16 precision needs a CUDA device"):
        rvc.resolve_precision("fp16", cpu)
    with pytest.raises(VoiceError, match="unknown precision"):
        rvc.resolve_precision("fp8", cpu)


def test_empty_settings_take_the_devices_defaults(tmp_path: Path, models: DeviceModels) -> None:
    from bridge.vc.rvc import DeviceDefaults

    # The CPU: real time on 2 cores (parselmouth, 2 s blocks, 0.5 s context), paced from 0.6 s.
    conv = RVCConverter(Settings(models_dir=tmp_path), models=models)
    info = conv.info()
    assert (info["pitch_method"], info["block_ms"], info["context_ms"]) == ("parselmouth", 2000, 500)
    assert info["first_block_ms"] == 600 and info["paced_blocks"] is True
    # A first block longer than the blocks is cut to them.
    assert RVCConverter(Settings(models_dir=tmp_path, rvc_block_seconds=0.2), models=models).info()["first_block_ms"] == 200
    # Explicit settings win over the device's defaults.
    conv = RVCConverter(
        Settings(models_dir=tmp_path, rvc_pitch_method="rmvpe", rvc_block_seconds=0.5, rvc_context_seconds=1.0),
        models=models,
    )
    info = conv.info()
    assert (info["pitch_method"], info["block_ms"], info["context_ms"]) == ("rmvpe", 500, 1000)
    # CUDA: RMVPE and short blocks.
    cuda = DeviceDefaults.for_device(torch.device("cuda"))
    assert (cuda.pitch_method, cuda.block_seconds, cuda.context_seconds, cuda.first_block_seconds) == ("rmvpe", 0.5, 1.0, 0.24)
