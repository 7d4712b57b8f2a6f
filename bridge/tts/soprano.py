"""Soprano TTS (ekwek/Soprano-1.1-80M): an 80 M-parameter English voice that streams as it speaks.

The model is a Qwen3 causal LM that writes one "audio token" per 64 ms of speech, and a
Vocos-style decoder that turns the LM's last-layer hidden states into 32 kHz audio. The
``soprano-tts`` package ships both, but its own streaming loop is slow and has defects that
must not reach a listener (crashes on empty text or an immediate ``[STOP]``, unbounded
generation, ``print`` on every call, a 64 ms late hidden state in its transformers streaming
path, one stream at a time). This engine uses the package only for its decoder module and its
text normaliser, loads the LM with transformers, and runs generation in
:mod:`bridge.tts.soprano_scheduler`: one thread steps every concurrent stream in one batched
forward pass and decodes audio incrementally, a few tokens after they are generated.

Usage::

    engine = SopranoEngine.from_settings(settings.soprano, settings.engines)
    engine.load()                                   # weights, scheduler thread, warm-up
    for chunk in engine.stream("Hello there.", CancelToken()):
        ...                                         # float32 at 32 kHz, first after 5 tokens
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bridge.cancel import CancelToken
from bridge.config import EngineSettings, SopranoSettings
from bridge.tts.base import TTSEngine, TTSError

if TYPE_CHECKING:
    from bridge.tts.soprano_scheduler import BatchScheduler, Chunk

log = logging.getLogger("bridge.tts.soprano")

SAMPLE_RATE = 32_000

#: The Hugging Face repository ``models pull`` fetches Soprano from.
SOPRANO_HF_REPO = "ekwek/Soprano-1.1-80M"
#: Files of :data:`SOPRANO_HF_REPO` the engine needs, with what is known of them. Exact sizes
#: and sha256 digests were not found in any source reachable from this project (no HF page or
#: mirror listing them), so they are ``None``: the pull tool should record them on first
#: download. ``approx_bytes`` are from the model's architecture (79.7 M LM parameters stored as
#: bfloat16; 30.35 M decoder parameters as float32) and a report of the tokenizer's size.
SOPRANO_HF_FILES: tuple[dict[str, Any], ...] = (
    {"name": "config.json", "size": None, "sha256": None, "approx_bytes": 1_000},
    {"name": "generation_config.json", "size": None, "sha256": None, "approx_bytes": 150},
    {"name": "model.safetensors", "size": None, "sha256": None, "approx_bytes": 159_000_000},
    {"name": "tokenizer.json", "size": None, "sha256": None, "approx_bytes": 1_630_000},
    {"name": "tokenizer_config.json", "size": None, "sha256": None, "approx_bytes": 1_000},
    {"name": "decoder.pth", "size": None, "sha256": None, "approx_bytes": 121_400_000},
)
#: Files without which :meth:`SopranoEngine.load` cannot start.
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "decoder.pth")

#: Every sentence may run to at least this many audio tokens (2 s) before the length cap.
MIN_TOKEN_CAP = 32
#: Sentences shorter than this are merged with a neighbour, as the package does (prosody).
MIN_SENTENCE_CHARS = 30
#: The package's splitter limit: longer stretches are cut at a sentence end or a space.
MAX_SENTENCE_CHARS = 300
WARMUP_TEXT = "Hello world."

# ---------------------------------------------------------------------------------------
# Text: the package's normaliser, with its defects worked around before it runs.

_EG = re.compile(r"\be\.\s?g\.", re.IGNORECASE)
_IE = re.compile(r"\bi\.\s?e\.", re.IGNORECASE)
_INITIALISM = re.compile(r"\b(?:[A-Za-z]\.){2,}")
_CLOCK = re.compile(r"\b(\d{1,2}):([0-5]\d):([0-5]\d)\b")
_WWW = re.compile(r"\bwww\.", re.IGNORECASE)
_REPEATED_CAPITAL = re.compile(r"\b([A-Z])\1{2,}\b")
_SPEAKABLE = re.compile(r"[A-Za-z0-9]")
# "Jan. 5th", "Mon. morning": the normaliser expands the word but keeps the dot, which then
# ends a sentence mid-phrase. Drop the dot when the phrase goes on in lower case or digits.
_ABBREVIATION_DOT = re.compile(
    r"\b(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Mon|Tue|Tues|Wed|Thu|Thurs|Fri|Sat|Sun|Ave|approx)\."
    r"(?=\s+[a-z0-9])"
)
_VERSUS = re.compile(r"\bvs\.?(?=\s)", re.IGNORECASE)
_AM_PM = re.compile(r"\b(\d{1,2}(?::\d\d)?)\s*([AaPp])\.?\s?[Mm]\b(?:\.(?=\s+[a-z0-9]))?")
# The bridge's normalizer writes "seven AM" (espeak-ng spells it); lower-cased it would be "am".
_SPOKEN_AM_PM = re.compile(r"(?<=[a-z] )([AP])M\b")  # not "I AM SO HAPPY"


def _clock_words(match: re.Match[str]) -> str:
    """``01:15:30`` → ``1 hour 15 minutes 30 seconds`` (the package prints a Python set here)."""
    parts = []
    for value, unit in zip(match.groups(), ("hour", "minute", "second")):
        number = int(value)
        if number:
            parts.append(f"{number} {unit}{'' if number == 1 else 's'}")
    return " ".join(parts) or "0 seconds"


def _initialism(match: re.Match[str]) -> str:
    """``U.S.A.`` → ``U S A`` (the package reads ``u dot s.a.`` and ends a sentence there)."""
    letters = " ".join(match.group(0).replace(".", ""))
    at_end = match.end() == len(match.string) or match.string[match.end() :].strip() == ""
    return letters + ("." if at_end else "")


def _prefix_fixes(text: str) -> str:
    text = _ABBREVIATION_DOT.sub(r"\1", text)
    text = _VERSUS.sub("versus", text)
    text = _AM_PM.sub(lambda m: f"{m.group(1)} {m.group(2).lower()} m", text)
    text = _SPOKEN_AM_PM.sub(lambda m: f"{m.group(1).lower()} m", text)
    text = _EG.sub("for example", text)
    text = _IE.sub("that is", text)
    text = _CLOCK.sub(_clock_words, text)
    text = _WWW.sub("w w w dot ", text)
    text = _INITIALISM.sub(_initialism, text)
    text = _REPEATED_CAPITAL.sub(lambda m: " ".join(m.group(0)), text)
    return text


def _fallback_clean(text: str) -> str:
    from unidecode import unidecode

    text = unidecode(text).lower()
    text = re.sub(r"[^a-z0-9 .,!?'-]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def prepare_text(text: str) -> list[str]:
    """Text → the normalised sentences Soprano is prompted with; ``[]`` when there is nothing to say."""
    if not text or not _SPEAKABLE.search(text):
        return []
    from soprano.utils.text_normalizer import clean_text
    from soprano.utils.text_splitter import split_and_recombine_text

    fixed = _prefix_fixes(text.strip())
    try:
        cleaned = clean_text(fixed)
    except Exception:  # the normaliser asserts on some inputs (odd phone numbers)
        log.warning("soprano: text normaliser failed; using a plain fallback", exc_info=True)
        cleaned = _fallback_clean(fixed)
    pieces = [s.strip() for s in split_and_recombine_text(cleaned, max_length=MAX_SENTENCE_CHARS)]
    pieces = [s for s in pieces if _SPEAKABLE.search(s)]
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        piece = f"{carry} {piece}".strip() if carry else piece
        carry = ""
        if len(piece) >= MIN_SENTENCE_CHARS:
            merged.append(piece)
        elif merged:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            carry = piece
    if carry:
        merged.append(carry)
    return merged


def token_cap(sentence: str, max_new_tokens: int, tokens_per_char: float) -> int:
    """How many audio tokens ``sentence`` may take before it counts as runaway."""
    return max(1, min(max_new_tokens, MIN_TOKEN_CAP + math.ceil(tokens_per_char * len(sentence))))


class SopranoStream:
    """The iterator :meth:`SopranoEngine.stream` returns: waits for the scheduler's chunks.

    Closing it (or dropping it) withdraws the request; so does its cancel token.
    """

    def __init__(self, job: Any, cancel: CancelToken, scheduler: BatchScheduler | None, *, audio_only: bool = False):
        self._job = job
        self._cancel = cancel
        self._scheduler = scheduler
        self._audio_only = audio_only

    def __iter__(self) -> SopranoStream:
        return self

    def __next__(self) -> Any:
        from bridge.tts.soprano_scheduler import is_end

        job = self._job
        if job is None:
            raise StopIteration
        while True:
            try:
                item = job.out.get(timeout=0.05)
            except queue.Empty:
                if self._cancel.cancelled:
                    self.close()
                    raise StopIteration from None
                if self._scheduler is None or not self._scheduler.alive:
                    self.close()
                    raise TTSError("Soprano scheduler stopped") from None
                continue
            if is_end(item) or self._cancel.cancelled:
                self.close()
                raise StopIteration
            if isinstance(item, BaseException):
                self.close()
                raise TTSError(f"Soprano synthesis failed: {item}") from item
            np.clip(item.audio, -1.0, 1.0, out=item.audio)
            return item.audio if self._audio_only else item

    def close(self) -> None:
        if self._job is not None:
            self._job.close()
            self._job = None

    def __del__(self) -> None:
        self.close()


# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars while loading (they write to the terminal on every start)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class SopranoEngine(TTSEngine):
    """Soprano 1.1 through a batched streaming scheduler. Thread-safe ``stream``."""

    name: ClassVar[str] = "soprano"

    def __init__(
        self,
        model_dir: Path | str,
        settings: SopranoSettings | None = None,
        *,
        device: str = "auto",
        warmup: bool = True,
    ) -> None:
        """``settings``: the ``[soprano]`` section (its defaults when None); ``device`` as the
        engines section's ``device``."""
        settings = settings if settings is not None else SopranoSettings()
        self.model_dir = Path(model_dir)
        self.device_setting = device
        self.dtype_setting = settings.dtype
        self.max_new_tokens = settings.max_new_tokens
        self.tokens_per_char = settings.tokens_per_char
        self.temperature = settings.temperature
        self.top_p = settings.top_p
        self.repetition_penalty = settings.repetition_penalty
        self.max_batch = settings.max_batch
        self.chunk_tokens = settings.chunk_tokens
        self.threads = settings.threads
        self.warmup = warmup
        self.device: str | None = None
        self.dtype: str | None = None
        self._tokenizer: Any = None  # used by the scheduler thread only
        self._scheduler: BatchScheduler | None = None
        self._load_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: SopranoSettings, engines: EngineSettings) -> SopranoEngine:
        """From the ``soprano`` section, on the engines section's device and models folder."""
        return cls(settings.model_folder(engines.models_dir), settings, device=engines.device)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def languages(self) -> tuple[str, ...]:
        """Soprano 1.1 speaks English only."""
        return ("en",)

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        with self._load_lock:
            if self._scheduler is not None:
                return
            self._load()
        if self.warmup:
            for _ in self.iter_chunks(WARMUP_TEXT, CancelToken(), max_tokens=12, chunk_tokens=1):
                pass
            log.info("soprano: warmed up (%s)", self._scheduler.stats() if self._scheduler else {})

    def _load(self) -> None:
        missing = [name for name in REQUIRED_FILES if not (self.model_dir / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"Soprano model incomplete in {self.model_dir}: missing {', '.join(missing)} "
                f"(run `voice-bridge models pull soprano`, repo {SOPRANO_HF_REPO})"
            )
        import torch
        from soprano.vocos.decoder import SopranoDecoder
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from bridge.accelerator import auto_lm_dtype, resolve_device
        from bridge.tts.soprano_scheduler import BatchScheduler, SamplingConfig

        device = resolve_device(torch, self.device_setting)
        if self.threads > 0:
            torch.set_num_threads(self.threads)
        dtype_name = self.dtype_setting
        if dtype_name == "auto":
            dtype_name = auto_lm_dtype(torch, device)
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype_name]

        with _quiet_transformers():
            lm = AutoModelForCausalLM.from_pretrained(
                self.model_dir, dtype=dtype, attn_implementation="sdpa", local_files_only=True
            )
            tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        lm.to(device).eval()

        vocab = tokenizer.get_vocab()
        absent = [t for t in ("[STOP]", "[TEXT]", "[START]") if t not in vocab]
        if absent:
            raise TTSError(f"Soprano tokenizer in {self.model_dir} lacks {', '.join(absent)}")
        stop_id = vocab["[STOP]"]
        eos = lm.config.eos_token_id
        if isinstance(eos, int) and eos != stop_id:
            log.warning("soprano: config eos_token_id %s is not [STOP] (%s); stopping on [STOP]", eos, stop_id)

        decoder = SopranoDecoder()
        if lm.config.hidden_size != decoder.decoder_initial_channels:
            raise TTSError(
                f"Soprano LM hidden size {lm.config.hidden_size} does not match the decoder's "
                f"{decoder.decoder_initial_channels} input channels"
            )
        state = torch.load(self.model_dir / "decoder.pth", map_location="cpu", weights_only=True)
        decoder.load_state_dict(state)
        decoder.to(device).eval()

        self._tokenizer = tokenizer
        self.device, self.dtype = device, dtype_name
        self._scheduler = BatchScheduler(
            lm,
            decoder,
            device=torch.device(device),
            stop_id=stop_id,
            max_new_tokens=self.max_new_tokens,
            max_batch=self.max_batch,
            chunk_tokens=self.chunk_tokens,
            sampling=SamplingConfig(self.temperature, self.top_p, self.repetition_penalty),
        )
        log.info(
            "soprano: loaded %s on %s (%s), %d layers, batch up to %d",
            self.model_dir,
            device,
            dtype_name,
            lm.config.num_hidden_layers,
            self.max_batch,
        )

    # ------------------------------------------------------------------ synthesis
    def _prepare(self, text: str, cap: int) -> tuple[list[list[int]], list[int]]:
        """Scheduler thread: text → one prompt and one token cap per sentence."""
        sentences = prepare_text(text)
        prompts = [list(self._tokenizer(f"[STOP][TEXT]{s}[START]")["input_ids"]) for s in sentences]
        return prompts, [token_cap(s, cap, self.tokens_per_char) for s in sentences]

    def stream(
        self, text: str, cancel: CancelToken, lead: Callable[[], float] | None = None
    ) -> Iterator[np.ndarray]:
        """Audio chunks for ``text``; generation starts at this call (it only enqueues the text)."""
        return SopranoStream(self._submit(text, cancel, None, None), cancel, self._scheduler, audio_only=True)

    def iter_chunks(
        self,
        text: str,
        cancel: CancelToken,
        *,
        max_tokens: int | None = None,
        chunk_tokens: int | None = None,
    ) -> Iterator[Chunk]:
        """Like :meth:`stream`, with each chunk's origin. ``max_tokens`` caps every sentence."""
        return SopranoStream(self._submit(text, cancel, max_tokens, chunk_tokens), cancel, self._scheduler)

    def _submit(self, text: str, cancel: CancelToken, max_tokens: int | None, chunk_tokens: int | None):
        from bridge.tts.soprano_scheduler import Job

        scheduler = self._scheduler
        if scheduler is None:
            raise TTSError("Soprano engine is not loaded")
        if not text or not _SPEAKABLE.search(text) or cancel.cancelled:
            return None
        cap = self.max_new_tokens if max_tokens is None else min(max_tokens, self.max_new_tokens)
        job = Job(
            cancel=cancel,
            text=text,
            prepare=lambda t: self._prepare(t, cap),
            chunk_tokens=chunk_tokens,
            cap_is_expected=max_tokens is not None,
        )
        try:
            scheduler.submit(job)
        except RuntimeError as exc:
            raise TTSError(str(exc)) from exc
        return job

    # ------------------------------------------------------------------ lifecycle
    def info(self) -> dict[str, Any]:
        info = super().info()
        info.update(
            model_dir=str(self.model_dir),
            device=self.device,
            dtype=self.dtype,
            max_batch=self.max_batch,
        )
        if self._scheduler is not None:
            info["scheduler"] = self._scheduler.stats()
        return info

    def close(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.close()
