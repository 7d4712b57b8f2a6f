"""Engine faults of any kind stay inside one segment of one session."""

from __future__ import annotations

import asyncio
import json
import sys
import types

import pytest
import websockets

from bridge.engines import free_accelerator_memory, is_out_of_memory
from bridge.pipeline import ErrorOut, SessionOptions, SessionPipeline
from bridge.server import STATE
from tests.support.engines_util import RaisingEngine
from tests.support.pipeline_io import audio_of, collect_until_flushed
from tests.support.ws_client import read_utterance, recv_json


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError (a RuntimeError subclass), without importing torch."""


def test_out_of_memory_is_recognised() -> None:
    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("[ONNXRuntimeError] : 6 : Failed to allocate memory for requested buffer"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("memory is fine"))


def test_real_torch_oom_class_is_recognised() -> None:
    torch = pytest.importorskip("torch")
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))


def test_gpu_cache_is_emptied_when_torch_uses_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    emptied: list[bool] = []
    cuda = types.SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True, empty_cache=lambda: emptied.append(True))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    free_accelerator_memory()
    assert emptied == [True]
    cuda.is_initialized = lambda: False  # CUDA never used: nothing to do (and no CUDA init)
    free_accelerator_memory()
    assert emptied == [True]


@pytest.mark.parametrize(
    ("make_error", "kind", "fragment"),
    [
        (lambda: RuntimeError("kaput"), "internal", "internal error (RuntimeError)"),
        (lambda: KeyError("missing"), "internal", "internal error (KeyError)"),
        (lambda: MemoryError(), "oom", "out of memory"),
        (lambda: OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), "oom", "out of memory"),
    ],
)
async def test_any_fault_mid_segment_is_reported_and_the_rest_is_spoken(
    engines_factory, make_error, kind: str, fragment: str
) -> None:
    engine = RaisingEngine(engines_factory().tts, make_error, after_chunks=1)
    engines = engines_factory(engine)
    freed: list[bool] = []
    real_free = engines.free_memory
    engines.free_memory = lambda: (freed.append(True), real_free())  # type: ignore[method-assign]
    reported: list[str] = []
    observer = types.SimpleNamespace(
        observe_segment_latency=lambda s: None, observe_compute=lambda *step: None, error=reported.append
    )
    pipeline = SessionPipeline(engines, SessionOptions(events=True), observer=observer)
    try:
        pipeline.feed("This part is fine. But this one goes BOOM in the middle of it. And this part is fine too.")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)
        # The session goes on: a whole second utterance.
        pipeline.feed("Still talking.")
        pipeline.flush()
        second = await collect_until_flushed(pipeline)
    finally:
        await pipeline.close()
    errors = [i for i in items if isinstance(i, ErrorOut)]
    assert len(errors) == 1 and fragment in errors[0].message and errors[0].kind == kind
    assert reported == [kind] and engine.raised == 1
    assert freed == ([True] if kind == "oom" else [])
    assert any("fine too" in c for c in engine.calls)
    assert audio_of(items).size / 48000 > 1.5
    assert not [i for i in second if isinstance(i, ErrorOut)] and audio_of(second).size / 48000 > 0.5


async def test_one_sessions_fault_never_reaches_another(server_factory, piper_engine) -> None:
    engine = RaisingEngine(piper_engine, lambda: RuntimeError("injected"), after_chunks=1)
    srv = await server_factory(engine)

    async def session(text: str) -> tuple[list[bytes], list[dict]]:
        async with websockets.connect(srv.ws_url + "?events=1", compression=None) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"token": text, "flush": True}))
            first = await read_utterance(ws)
            await ws.send(json.dumps({"token": "And once more.", "flush": True}))
            second = await read_utterance(ws)
            return first[0] + second[0], first[1] + second[1]

    faulty, healthy = await asyncio.gather(
        session("The start is fine. Then BOOM goes the engine, loudly and at length. The end is fine."),
        session("Meanwhile, this other session speaks a calm sentence. It has a second one too."),
    )
    faulty_errors = [e for e in faulty[1] if e["type"] == "error"]
    assert len(faulty_errors) == 1 and "internal error (RuntimeError)" in faulty_errors[0]["error"]
    assert [e for e in healthy[1] if e["type"] == "error"] == []
    healthy_text = " ".join(e["text"] for e in healthy[1] if e["type"] == "segment")
    assert healthy_text.split() == "Meanwhile, this other session speaks a calm sentence. It has a second one too. And once more.".split()
    assert sum(len(f) for f in healthy[0]) / 4 / 48000 > 4.0
    assert [e["type"] for e in faulty[1]].count("flushed") == 2
    assert srv.app[STATE].metrics.value("voice_bridge_errors_total", kind="internal") == 1


async def test_a_fault_while_ending_an_utterance_still_ends_it(engines_factory, monkeypatch) -> None:
    from bridge.audio.chain import AudioChain

    def broken_finish(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("tail failed")

    pipeline = SessionPipeline(engines_factory(), SessionOptions(events=True))
    try:
        monkeypatch.setattr(AudioChain, "finish", broken_finish)
        pipeline.feed("Two words.")
        pipeline.flush()
        items = await collect_until_flushed(pipeline)  # a FlushedOut comes all the same
        assert any(isinstance(i, ErrorOut) and "utterance: internal error (RuntimeError)" in i.message for i in items)
        monkeypatch.undo()
        pipeline.feed("And after.")
        pipeline.flush()
        second = await collect_until_flushed(pipeline)
        assert not [i for i in second if isinstance(i, ErrorOut)] and audio_of(second).size > 0
    finally:
        await pipeline.close()
