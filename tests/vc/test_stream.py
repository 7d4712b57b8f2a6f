"""bridge/vc/stream.py: streaming equals whole-utterance conversion, joins without clicks,
lengths and latency, pitch shift mid-stream, cancel and reset, streams sharing the models."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from bridge.cancel import CancelToken, Cancelled
from bridge.vc.device_models import DeviceModels
from bridge.vc.layout import StreamLayout
from bridge.vc.stream import RVCStream
from bridge.vc.voice import load_voice

from .stubs import LocalContent, LocalPitch, speech_like
from .streaming import EXACT, HOP40, NAIVE, QUIET, REAL, SEEDED, interior, stream_all


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
