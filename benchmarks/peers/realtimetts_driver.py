"""Drive RealtimeTTS with LLM-like tokens and record when its audio appears. Standalone.

Runs in RealtimeTTS's own virtual environment (see setup_realtimetts.sh), not the bridge's:
it imports nothing from this repository. The benchmark writes a job file and reads back one
JSON line per reply; all the metrics are computed on the bridge side, with the same code as
for the servers.

    VENV/bin/python realtimetts_driver.py JOB.json OUT.jsonl

Job: ``{"engine": "stock" | "inprocess", "model": ONNX, "config": JSON, "piper": EXE,
"rate": 70, "replies": [[token, ...], ...], "warmup": [token, ...], "audio_dir": DIR|null}``
(with ``audio_dir``, each reply's audio is also written there as ``<index>.s16le``).

* ``stock``: RealtimeTTS's own ``PiperEngine``, which runs the ``piper`` executable once per
  sentence (piper-tts's console script; the model loads for every sentence).
* ``inprocess``: a ``BaseEngine`` holding a loaded ``piper.PiperVoice``: RealtimeTTS's text
  splitting and audio path with a warm engine, the fairest like-for-like.

Audio is captured, never played: ``muted=True`` and ``on_audio_chunk``. The text splitter is
stream2sentence's ``rule-based`` tokenizer: RealtimeTTS's default (``nltk+rule-based``)
downloads NLTK's punkt_tab data on first use, which an offline machine cannot do.

Per reply the line holds perf_counter times (CLOCK_MONOTONIC, one clock for the machine):
``token_sent`` (when each token became available, as an LLM at ``rate`` would make it),
``end_of_text`` (the generator ran out: RealtimeTTS's equivalent of a flush),
``sentences`` ([time it left the splitter, text, tokens consumed by then]),
``puts`` ([time, bytes, sentence number] for each block the engine queued) and
``chunks`` ([time, bytes] per on_audio_chunk call), ``done``, ``sample_rate``.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time


def main() -> int:
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    out = open(sys.argv[2], "w", encoding="utf-8", buffering=1)

    import RealtimeTTS
    import RealtimeTTS.text_to_stream as tts_module
    from RealtimeTTS import TextToAudioStream
    from RealtimeTTS.engines.base_engine import BaseEngine

    import pyaudio

    rate = float(job["rate"])
    state: dict = {"sentence": 0, "consumed": 0, "puts": [], "sentences": []}
    lock = threading.Lock()

    class RecordingQueue(queue.Queue):
        """The engine's audio queue, noting which sentence each block belongs to."""

        def put(self, item, block=True, timeout=None):  # type: ignore[override]
            if isinstance(item, (bytes, bytearray)):
                with lock:
                    state["puts"].append([time.perf_counter(), len(item), state["sentence"]])
            super().put(item, block, timeout)

    class InProcessPiper(BaseEngine):
        def __init__(self, model: str, config: str) -> None:
            from piper import PiperVoice

            self.voice = PiperVoice.load(model, config_path=config)

        def post_init(self) -> None:
            self.engine_name = "piper-inprocess"

        def get_stream_info(self):  # type: ignore[no-untyped-def]
            return pyaudio.paInt16, 1, self.voice.config.sample_rate

        def synthesize(self, text: str, sentence_count: int = 0) -> bool:
            super().synthesize(text, sentence_count)
            for chunk in self.voice.synthesize(text):
                self.queue.put(chunk.audio_int16_bytes)
            return True

        def get_voices(self):  # type: ignore[no-untyped-def]
            return []

        def set_voice(self, voice):  # type: ignore[no-untyped-def]
            pass

        def set_voice_parameters(self, **voice_parameters):  # type: ignore[no-untyped-def]
            pass

    if job["engine"] == "stock":
        from RealtimeTTS import PiperEngine, PiperVoice

        engine = PiperEngine(piper_path=job["piper"], voice=PiperVoice(job["model"], job["config"]))
    else:
        engine = InProcessPiper(job["model"], job["config"])
    engine.queue = RecordingQueue()  # after the metaclass ran BaseEngine.__init__
    sample_rate = engine.get_stream_info()[2]

    # Observe (never change) the splitter: which token closed each sentence, and when.
    original_s2s = tts_module._get_stream2sentence

    class S2SProbe:
        def __init__(self, module):  # type: ignore[no-untyped-def]
            self._module = module

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(self._module, name)

        def generate_sentences(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            for sentence in self._module.generate_sentences(*args, **kwargs):
                with lock:
                    state["sentences"].append([time.perf_counter(), sentence, state["consumed"]])
                yield sentence

    tts_module._get_stream2sentence = lambda: S2SProbe(original_s2s())

    chunks: list[list[float]] = []
    captured: list[bytes] = []
    audio_dir = job.get("audio_dir")
    audio_sink: list[bytes] | None = [] if audio_dir else None

    def on_chunk(chunk: bytes) -> None:
        chunks.append([time.perf_counter(), len(chunk)])
        if audio_sink is not None:
            captured.append(bytes(chunk))

    def before_sentence(sentence: str) -> None:
        with lock:
            state["sentence"] += 1

    stream = TextToAudioStream(engine, muted=True, tokenizer="rule-based", level=logging.WARNING)

    def speak(tokens: list[str]) -> dict:
        chunks.clear()
        captured.clear()
        with lock:
            state.update(sentence=0, consumed=0, puts=[], sentences=[])
        sent: list[float] = []
        marks: dict = {}

        def llm():  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            for index, token in enumerate(tokens):
                due = start + index / rate
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
                    now = time.perf_counter()
                # The token exists from its due time on, whether or not the consumer was ready.
                sent.append(due if now - due > 0.002 else now)
                with lock:
                    state["consumed"] = index + 1
                yield token
            marks["end_of_text"] = time.perf_counter()

        stream.feed(llm())
        stream.play(
            muted=True,
            tokenizer="rule-based",
            on_audio_chunk=on_chunk,
            before_sentence_synthesized=before_sentence,
        )
        done = time.perf_counter()
        if audio_sink is not None:
            audio_sink.append(b"".join(captured))
        with lock:
            return {
                "token_sent": sent,
                "end_of_text": marks.get("end_of_text"),
                "sentences": list(state["sentences"]),
                "puts": list(state["puts"]),
                "chunks": list(chunks),
                "done": done,
                "sample_rate": sample_rate,
                "sample_width": 2,
            }

    if job.get("warmup"):
        speak(job["warmup"])
        if audio_sink is not None:
            audio_sink.clear()
    out.write(json.dumps({"ready": True, "version": RealtimeTTS.__version__, "engine": engine.engine_name}) + "\n")
    for index, tokens in enumerate(job["replies"]):
        try:
            result = speak(tokens)
        except Exception as exc:  # report and go on: one reply must not end the run
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["index"] = index
        if audio_sink:
            with open(f"{audio_dir}/{index}.s16le", "wb") as handle:
                handle.write(audio_sink.pop())
        out.write(json.dumps(result) + "\n")
    stream.stop()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
