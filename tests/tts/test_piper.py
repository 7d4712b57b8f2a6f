"""The embedded voice: real Piper, chunked decoding equal to the whole graph."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from bridge.cancel import CancelToken
from bridge.tts.base import TTSError
from bridge.tts.piper import ChunkSchedule, PiperEngine

TEXT = "The hotel on Main Street has rooms from Friday, at about ninety dollars a night. Breakfast is included."


@pytest.fixture(scope="module")
def whole_graph() -> PiperEngine:
    engine = PiperEngine(noise_scale=0.0, noise_w=0.0, streaming=False)
    engine.load()
    return engine


def test_graph_is_split_for_streaming(deterministic_piper: PiperEngine) -> None:
    assert deterministic_piper.is_streaming
    assert deterministic_piper.sample_rate == 22050


def test_chunked_decoding_equals_the_whole_graph(deterministic_piper: PiperEngine, whole_graph: PiperEngine) -> None:
    assert not whole_graph.is_streaming
    chunks = list(deterministic_piper.stream(TEXT, CancelToken()))
    assert len(chunks) > 3  # really streamed: several chunks per sentence
    streamed = np.concatenate(chunks)
    whole = whole_graph.synthesize(TEXT)
    assert streamed.shape == whole.shape
    assert np.max(np.abs(streamed - whole)) < 1e-4


def test_first_chunk_is_small(deterministic_piper: PiperEngine) -> None:
    first = next(iter(deterministic_piper.stream(TEXT, CancelToken())))
    assert first.size == deterministic_piper.schedule.first_frames * 256


@pytest.mark.parametrize("total", [1, 5, 12, 13, 17, 60, 61, 300, 1000])
def test_schedule_covers_every_frame_once(total: int) -> None:
    spans = list(ChunkSchedule().spans(total))
    assert spans[0][0] == 0 and spans[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(end - start <= ChunkSchedule().max_frames + ChunkSchedule().first_frames for start, end in spans)


def test_chunks_grow_from_a_small_first_one_while_the_listener_has_little_left() -> None:
    schedule = ChunkSchedule(first_frames=16, max_frames=192, growth=2.0)
    sizes = [end - start for start, end in schedule.spans(600, lead=lambda: 0.2)]
    assert sizes[:5] == [16, 32, 64, 128, 192]
    assert [end - start for start, end in schedule.spans(600)] == sizes  # unknown lead: the same


def test_chunks_are_the_largest_at_once_while_the_listener_has_plenty() -> None:
    schedule = ChunkSchedule(first_frames=16, max_frames=192, relaxed_lead_seconds=1.0)
    assert [end - start for start, end in schedule.spans(400, lead=lambda: 1.0)] == [192, 192, 16]
    # The lead is asked before every chunk: a segment that starts while the listener has
    # little left starts small, and jumps to the largest chunk once the listener has plenty.
    leads = iter([0.1, 0.1, 1.5, 1.5, 1.5])
    assert [end - start for start, end in schedule.spans(500, lead=lambda: next(leads))] == [16, 32, 192, 192, 68]


def test_large_chunks_give_the_same_samples(deterministic_piper: PiperEngine) -> None:
    small = np.concatenate(list(deterministic_piper.stream(TEXT, CancelToken(), lead=lambda: 0.0)))
    large = list(deterministic_piper.stream(TEXT, CancelToken(), lead=lambda: 5.0))
    assert large[0].size == min(small.size, deterministic_piper.schedule.max_frames * 256) or len(large) == 1
    assert np.max(np.abs(np.concatenate(large) - small)) < 1e-4


def test_calls_alone_and_calls_among_others_give_the_same_samples(deterministic_piper: PiperEngine) -> None:
    # threads = 0: a second set of sessions over every core serves calls that run alone.
    import bridge.workers as workers

    if deterministic_piper._wide is None:  # noqa: SLF001 - a 1-core machine, or threads set
        pytest.skip("one core: no wide sessions")
    workers._call.cores = 1  # noqa: SLF001 - as inside a worker with company
    try:
        narrow = deterministic_piper.synthesize(TEXT)
    finally:
        del workers._call.cores  # noqa: SLF001
    wide = deterministic_piper.synthesize(TEXT)  # outside the workers: every core
    assert narrow.size == wide.size and np.max(np.abs(narrow - wide)) < 1e-4


def test_nothing_to_say_yields_nothing(piper_engine: PiperEngine) -> None:
    assert list(piper_engine.stream("", CancelToken())) == []
    assert list(piper_engine.stream("   \n", CancelToken())) == []


def test_cancel_stops_between_chunks(deterministic_piper: PiperEngine) -> None:
    token = CancelToken()
    got = []
    for chunk in deterministic_piper.stream(TEXT, token):
        got.append(chunk)
        token.cancel()
    assert len(got) == 1


def test_concurrent_streams_do_not_mix(deterministic_piper: PiperEngine) -> None:
    texts = ["First voice, first words.", "Second voice says something else entirely."]
    alone = [deterministic_piper.synthesize(t) for t in texts]
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        results[i] = np.concatenate([deterministic_piper.synthesize(texts[i]) for _ in range(3)])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert np.allclose(results[i], np.tile(alone[i], 3), atol=1e-4)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    engine = PiperEngine(tmp_path / "nope.onnx", tmp_path / "nope.onnx.json")
    with pytest.raises(TTSError, match="Piper model not found"):
        engine.load()


def test_unloaded_engine_refuses(tmp_path: Path) -> None:
    engine = PiperEngine()
    with pytest.raises(TTSError, match="not loaded"):
        list(engine.stream("hello", CancelToken()))


def test_peak_level_is_not_normalised_per_segment(piper_engine: PiperEngine) -> None:
    # Per-segment peak normalisation would make loudness jump between segments.
    quiet = piper_engine.synthesize("hmm.")
    assert 0.01 < np.max(np.abs(quiet)) < 0.99


LONG = (
    "The first thing you should know is that the river floods every spring, so the farmers plant "
    "their crops on the higher ground, where the soil stays dry until the summer comes back again."
)


def test_the_flow_is_split_off_and_runs_in_pieces_equal_to_the_whole_graph(
    deterministic_piper: PiperEngine, whole_graph: PiperEngine
) -> None:
    assert deterministic_piper._flow is not None  # noqa: SLF001 - the standard export splits
    streamed = np.concatenate(list(deterministic_piper.stream(LONG, CancelToken())))
    whole = whole_graph.synthesize(LONG)
    assert streamed.shape == whole.shape
    assert np.max(np.abs(streamed - whole)) < 1e-4


@pytest.mark.parametrize(
    "short",
    [
        # The flow's pieces with a quarter of its receptive field each side.
        ChunkSchedule(flow_context_frames=8),
        # The decoder's chunks with less than half of its receptive field each side.
        ChunkSchedule(context_frames=4),
    ],
    ids=["flow", "decoder"],
)
def test_too_little_context_would_show(
    short: ChunkSchedule, deterministic_piper: PiperEngine, whole_graph: PiperEngine
) -> None:
    # The checks of equal samples can fail: with too little context the pieces' edges differ.
    schedule = deterministic_piper.schedule
    deterministic_piper.schedule = short
    try:
        streamed = np.concatenate(list(deterministic_piper.stream(LONG, CancelToken())))
    finally:
        deterministic_piper.schedule = schedule
    assert np.max(np.abs(streamed - whole_graph.synthesize(LONG))) > 1e-3


def test_without_a_flow_to_split_off_the_encoder_keeps_it(monkeypatch: pytest.MonkeyPatch, whole_graph: PiperEngine) -> None:
    import bridge.tts.piper as piper

    monkeypatch.setattr(piper, "_FLOW_PREFIX", "/no-such-part/")
    engine = PiperEngine(noise_scale=0.0, noise_w=0.0, threads=1)
    engine.load()
    assert engine.is_streaming and engine._flow is None  # noqa: SLF001
    streamed = np.concatenate(list(engine.stream(LONG, CancelToken())))
    assert np.max(np.abs(streamed - whole_graph.synthesize(LONG))) < 1e-4


@pytest.mark.parametrize("total", [10, 40, 64, 90, 97, 300, 700, 2000])
def test_flow_pieces_cover_what_the_decoder_needs_growing_without_slivers(total: int) -> None:
    schedule = ChunkSchedule()
    done, previous, pieces = 0, 0, []
    for _, hi in ((s, min(total, e + schedule.context_frames)) for s, e in schedule.spans(total)):
        while done < hi:
            start, end = schedule.flow_pieces(hi, done, total, previous)
            assert start == done and end >= hi
            pieces.append(end - start)
            done, previous = end, end - start
    assert sum(pieces) == total
    assert pieces[0] >= min(total, schedule.flow_first_frames)
    assert all(b >= a * schedule.flow_growth or b == pieces[-1] for a, b in zip(pieces, pieces[1:]))
    assert all(p >= schedule.flow_first_frames // 2 for p in pieces[1:])


def test_the_first_chunk_is_larger_while_other_work_competes(deterministic_piper: PiperEngine) -> None:
    schedule = ChunkSchedule(first_frames=16, busy_first_frames=48, max_frames=192, growth=2.0)
    assert [e - s for s, e in schedule.spans(600, busy=1.0)][:3] == [48, 96, 192]
    assert [e - s for s, e in schedule.spans(600, busy=0.5)][:3] == [32, 64, 128]
    assert [e - s for s, e in schedule.spans(600, busy=3.0)][0] == 48  # more than a round: the same
    assert [e - s for s, e in schedule.spans(600, busy=0.0)][0] == 16
    import bridge.workers as workers

    workers._call.cores = 1  # noqa: SLF001 - as inside a worker with company: one job waiting
    workers._call.competing = 0  # noqa: SLF001
    try:
        first = next(iter(deterministic_piper.stream(LONG, CancelToken())))
        assert first.size == deterministic_piper.schedule.first_frames * 256
        workers._call.competing = workers.available_cores()  # noqa: SLF001 - a round of work competes
        first = next(iter(deterministic_piper.stream(LONG, CancelToken())))
    finally:
        del workers._call.cores, workers._call.competing  # noqa: SLF001
    assert first.size == deterministic_piper.schedule.busy_first_frames * 256


def test_a_chunk_over_the_shared_size_is_long_only_while_the_workers_grant_it() -> None:
    schedule = ChunkSchedule(first_frames=16, max_frames=192, growth=2.0, shared_max_frames=64)
    asked: list[int] = []

    def refuse() -> bool:
        asked.append(1)
        return False

    # Refused: never more than the shared size; the growth goes on behind it, asked each time.
    sizes = [e - s for s, e in schedule.spans(600, lead=lambda: 0.2, may_go_long=refuse)]
    assert sizes[:6] == [16, 32, 64, 64, 64, 64]
    assert len(asked) == len(sizes) - 3  # each chunk after 16, 32, 64 would be over it
    # Granted: the same chunks as without the question; a relaxed listener's largest chunk too.
    assert [e - s for s, e in schedule.spans(600, lead=lambda: 0.2, may_go_long=lambda: True)] == [
        e - s for s, e in schedule.spans(600, lead=lambda: 0.2)
    ]
    grants = iter([False])  # refused once, granted from then on (a later job got the grant)
    assert [e - s for s, e in schedule.spans(400, lead=lambda: 1.5, may_go_long=lambda: next(grants, True))] == [64, 192, 144]
