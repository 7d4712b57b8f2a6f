"""All settings of voice-bridge, in one place, grouped by the stage they configure.

:class:`Settings` holds one section a stage (``settings.server``, ``settings.segmenter``,
``settings.rvc`` …); each stage is built from its own section only, so a constructor's signature
says what it depends on. Values come, highest priority first, from constructor arguments (the
CLI), ``VOICE_BRIDGE_<NAME>`` environment variables, a TOML file (``VOICE_BRIDGE_CONFIG`` or
``voice-bridge.toml`` in the working directory), then the defaults below.

Every setting keeps one flat, documented name (its alias): the section's prefix and the field's
name (``rvc`` + ``index_rate`` → ``rvc_index_rate``), or a name of its own where the setting is
older than the section (``segment_max_chars``, ``default_voice``). That name is the environment
variable (``VOICE_BRIDGE_RVC_INDEX_RATE``), the TOML key (``rvc_index_rate = 0.5``, or ``[rvc]``
then ``index_rate = 0.5``: tables are flattened by joining names with ``_``), the constructor
keyword (``Settings(rvc_index_rate=0.5)``) and the README's row, which is generated from the
sections.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bridge.audio.formats import PcmFormat
from bridge.audio.pauses import PauseConfig
from bridge.capacity import CapacityConfig
from bridge.scheduler import DeadlinePolicy
from bridge.segmenter import SegmenterConfig

# Moved out, still importable from here: the flat-name machinery (bridge.settings_names), the
# TOML source (bridge.settings_sources) and the README table helpers (bridge.settings_docs).
from bridge.settings_docs import README_BEGIN, README_END, replace_block, settings_table, table_cli
from bridge.settings_names import FlatInitSource, Section, documented_name, flat_fields, flat_model, flatten_sections, nest_flat, prefixed  # noqa: F401 (re-exported)
from bridge.settings_sources import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, FOREIGN_SECTIONS, TomlSource, config_file_path  # noqa: F401 (re-exported)

ENV_PREFIX = "VOICE_BRIDGE_"

#: The output rate of the bridge: every stream and WAV is 48 kHz mono.
OUTPUT_SAMPLE_RATE = 48_000


def _split_csv(value: Any) -> Any:
    """A list setting written as one string (the environment): ``"a, b"`` → ``["a", "b"]``."""
    if value is None:  # an empty variable (env_parse_none_str)
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


T = TypeVar("T")
#: A list setting; in the environment written comma-separated.
CommaSeparated = Annotated[list[T], NoDecode, BeforeValidator(_split_csv)]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level_name(value: str) -> str:
    """A stdlib logging level's name, upper-cased; anything else is refused."""
    level = value.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown log level {value!r}")
    return level


def default_of(stage_config: type, name: str) -> Any:
    """The default of a field of a stage's own (plain dataclass) config: the stage knows its
    tuned value; the setting documents it and lets it be changed."""
    for item in dataclasses.fields(stage_config):
        if item.name == name:
            return item.default
    raise AttributeError(f"{stage_config.__name__} has no field {name!r}")


def milliseconds(seconds: float) -> int:
    """A stage's default in seconds as a ``*_ms`` setting."""
    return round(seconds * 1000)


class ServerSettings(Section):
    """Where the server listens and how it logs (bridge/server.py, bridge/logs.py)."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8765, ge=0, le=65535, description="TCP port (0 picks a free one).")
    log_level: str = Field("INFO", description="stdlib logging level.")
    log_json: bool = Field(False, description="Log one JSON object per line.")

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return log_level_name(value)


class EngineSettings(Section):
    """Which TTS engine, on which device, with weights from where (bridge/engines.py)."""

    tts: Literal["piper", "soprano"] = Field("piper", description="TTS engine to load.")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'.")
    models_dir: Path = Field(Path("models"), description="Where weights live.")


class PiperSettings(Section):
    """The embedded Piper voice (bridge/tts/piper.py)."""

    model_config = ConfigDict(alias_generator=prefixed("piper_"))

    model: Path | None = Field(
        None, description="Piper .onnx voice; default: the embedded joe-medium voice."
    )
    threads: int = Field(
        0,
        ge=0,
        description="onnxruntime intra-op threads per synthesis call. 0: one per call, so each "
        "model worker is one core's work, and every core for a call that runs while no other "
        "model work waits.",
    )
    streaming: bool = Field(
        True, description="Decode Piper audio in chunks (first audio sooner) when the graph allows."
    )
    noise_scale: float | None = Field(None, ge=0, description="Override the voice's noise scale.")
    length_scale: float | None = Field(None, gt=0, description="Override the voice's speaking rate (>1 slower).")
    noise_w: float | None = Field(None, ge=0, description="Override the voice's duration noise.")


class SchedulerSettings(Section):
    """The model workers and the deadlines they serve sessions by (bridge/scheduler.py, bridge/workers.py)."""

    synthesis_workers: int = Field(
        0,
        ge=0,
        description="Threads running model work (TTS, voice conversion) for all sessions, most "
        "urgent first (0: one per core the process may use).",
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower than the server's event loop the model workers run (Linux "
        "niceness, per thread): audio already made is sent without waiting for a core behind model "
        "work (0: the same priority, e.g. when other CPU-heavy work on the machine must not overtake them).",
    )
    first_audio_target_ms: int = Field(
        milliseconds(default_of(DeadlinePolicy, "first_audio_target")),
        ge=0,
        description="Scheduling: an utterance's first audio is due this long after its first "
        "segment is cut; work for listeners with more audio left waits behind it.",
    )
    boundary_grace_ms: int = Field(
        milliseconds(default_of(DeadlinePolicy, "boundary_grace")),
        ge=0,
        description="Scheduling: a segment's first work, for a listener that is late (less than "
        "this left, or it ran dry before), may be this much later than the listener running dry, "
        "so that under overload gaps fall at sentence and clause ends.",
    )
    start_burst: int = Field(
        0,
        ge=0,
        description="Scheduling: utterances that may start at the same moment with their first audio "
        "due at once; further ones starting together have it due start_spacing_ms later each, so "
        "listeners already speaking keep their turn (0: one more than the model workers).",
    )
    start_spacing_ms: int = Field(
        0,
        ge=0,
        description="Scheduling: the spacing of those starts' first-audio deadlines (0: measured: "
        "the CPU time start_audio_seconds of the default voice's audio costs, over the model workers).",
    )
    start_audio_seconds: float = Field(
        3.0,
        gt=0,
        description="Scheduling: the audio an utterance's start is charged for when its start is spaced "
        "(its first seconds are made while it plays, on top of the load already there).",
    )


class SopranoSettings(Section):
    """Soprano TTS, with ``tts = "soprano"`` (bridge/tts/soprano.py)."""

    model_config = ConfigDict(alias_generator=prefixed("soprano_"))

    model_dir: Path | None = Field(
        None,
        description="Soprano model folder (config.json, model.safetensors, tokenizer.json, "
        "tokenizer_config.json, decoder.pth); default: the soprano folder in models_dir.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="LM precision; 'auto': bfloat16 on a GPU that computes it natively (NVIDIA compute "
        "capability 8+, AMD CDNA or RDNA 3+), else float32 (CPU, RX 6000, older NVIDIA). The decoder runs in float32."
    )
    max_new_tokens: int = Field(
        512, ge=16, le=4096, description="Hard cap on audio tokens per sentence (64 ms each)."
    )
    tokens_per_char: float = Field(
        3.0,
        gt=0,
        description="Also cap a sentence at 32 + this many tokens per character of its text "
        "(speech needs about 1): a runaway sentence is cut early.",
    )
    temperature: float = Field(
        0.0, ge=0, description="Sampling temperature; 0 takes the likeliest token (the package's default)."
    )
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass (with temperature > 0).")
    repetition_penalty: float = Field(
        1.2, ge=1.0, description="Penalty on tokens already in the prompt or the audio so far."
    )
    max_batch: int = Field(
        8, ge=1, le=256, description="Sentences generated together in one batched step; more wait their turn."
    )
    chunk_tokens: int = Field(
        8,
        ge=1,
        le=256,
        description="Largest audio chunk, in tokens of 64 ms: a sentence's first chunk is 1 token "
        "(out after 5 are generated), then 2, 4, … up to this (fewer decoder calls).",
    )
    threads: int = Field(
        0, ge=0, description="torch intra-op threads, process-wide (0: library default)."
    )

    def model_folder(self, models_dir: Path) -> Path:
        """The model's folder: ``model_dir``, else ``<models_dir>/soprano``."""
        return self.model_dir or models_dir / "soprano"


class SegmenterSettings(Section):
    """Where the token stream is cut into segments (bridge/segmenter.py)."""

    segment_max_chars: int = Field(default_of(SegmenterConfig, "max_chars"), ge=20, description="Hard cap on one segment's length.")
    first_segment_min_words: int = Field(
        default_of(SegmenterConfig, "first_min_words"), ge=1, description="Fast path: the first segment may end at a pause mark after this many words."
    )
    first_segment_max_words: int = Field(
        default_of(SegmenterConfig, "first_max_words"), ge=1, description="Fast path: cut the first segment after this many words when no boundary came (tuned: benchmarks/results/*-fast-path-tuning.md)."
    )
    pause_min_chars: int = Field(
        default_of(SegmenterConfig, "pause_min_chars"), ge=0, description="Later segments end at a pause mark (, ; :) only past this many characters."
    )
    second_segment_min_words: int = Field(
        default_of(SegmenterConfig, "second_min_words"), ge=0, description="The segment after the first fragment "
        "may end before a clause opener (but, because, which, when, with …) once it has this many words (0: off): "
        "its audio is due when the fragment's runs out.",
    )
    skip_code_blocks: bool = Field(default_of(SegmenterConfig, "skip_code_blocks"), description="Do not speak fenced code blocks.")
    idle_flush_ms: int = Field(
        0, ge=0, description="Speak buffered text after this long without tokens (0: only on flush)."
    )


class NormalizeSettings(Section):
    """Text normalization before the engine reads a segment (bridge/normalize)."""

    model_config = ConfigDict(alias_generator=prefixed("normalize_"))

    enabled: bool = Field(
        True,
        alias="normalize_text",
        description="Rewrite money, dates, times, numbers, units, abbreviations and symbols into the words a "
        "person would say before the engine reads a segment (segment events keep the original text).",
    )
    date_order: Literal["mdy", "dmy"] = Field(
        "mdy", description="How to read numeric dates such as 03/12/2026: mdy (March twelfth) or dmy (the third of December)."
    )
    foreign_text: Literal["transliterate", "skip"] = Field(
        "transliterate",
        description="Text in a script the voice cannot read (Japanese, Chinese, Korean, Cyrillic, Arabic … in an "
        "English voice): romanize it, or leave it out; segment events list what was done.",
    )
    pronunciations: dict[str, str] = Field(
        default_factory=dict,
        description="Your pronunciation dictionary: word or phrase → what to say instead, matched as a whole "
        "word ignoring case, before any other rule (TOML table [normalize.pronunciations]; env: JSON).",
    )


class AudioSettings(Section):
    """The audio sent: frames, format, pauses kept, fades, Opus (bridge/audio)."""

    frame_ms: int = Field(20, ge=5, le=1000, description="Audio per binary WebSocket frame.")
    output_format: PcmFormat = Field("f32le", description="Default PCM format.")
    sentence_pause_ms: int = Field(round(default_of(PauseConfig, "sentence_ms")), ge=0, description="Silence kept after a sentence end.")
    clause_pause_ms: int = Field(round(default_of(PauseConfig, "clause_ms")), ge=0, description="Silence kept after a pause mark.")
    word_pause_ms: int = Field(round(default_of(PauseConfig, "word_ms")), ge=0, description="Silence kept where a segment was cut between words.")
    fade_ms: float = Field(default_of(PauseConfig, "fade_ms"), ge=0, description="Raised-cosine fade where silence is trimmed.")
    opus_bitrate: int = Field(
        64000, ge=6000, le=510000, description="Opus bitrate (bit/s) for WebSocket `format: opus` and OpenAI `response_format: opus`."
    )


class OpenAISettings(Section):
    """The OpenAI speech API, POST /v1/audio/speech (bridge/openai_speech.py)."""

    model_config = ConfigDict(alias_generator=prefixed("openai_"))

    models: CommaSeparated[str] = Field(
        default_factory=lambda: ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "voice-bridge"],
        description="Model names POST /v1/audio/speech accepts (comma-separated; all speak with this server's engines).",
    )
    max_input_chars: int = Field(
        4096, ge=1, description="Longest `input` of POST /v1/audio/speech (OpenAI's limit: 4096)."
    )
    voice_map: dict[str, str] = Field(
        default_factory=dict,
        description="OpenAI voice names (alloy, nova, …) → this server's voices, as JSON; unmapped OpenAI names "
        "speak with the default voice.",
    )


class WyomingSettings(Section):
    """The Wyoming (Home Assistant) TTS server (bridge/wyoming_server.py)."""

    model_config = ConfigDict(alias_generator=prefixed("wyoming_"))

    port: int | None = Field(
        None, ge=0, le=65535, description="Serve Wyoming (Home Assistant) TTS on this TCP port, e.g. 10200 (empty: off)."
    )


class SessionSettings(Section):
    """How many sessions at once, and how much audio each may hold unsent (bridge/session.py, bridge/pipeline.py)."""

    max_sessions: int = Field(
        32, ge=1, description="Hard cap on concurrent sessions (WebSocket and /api/speak), whatever the measured capacity."
    )
    output_queue_seconds: float = Field(
        4.0, gt=0, description="Audio a session may hold unsent before its synthesis pauses."
    )


class CapacitySettings(Section):
    """Measured capacity: refusing a session the cores cannot serve (bridge/capacity.py, bridge/load.py)."""

    model_config = ConfigDict(alias_generator=prefixed("capacity_"))

    admission: bool = Field(
        True,
        description="Refuse a new session (WebSocket 1013, /api/speak 503, /ready 503) when one more listener "
        "would push the demand past the usable cores; false: only max_sessions limits.",
    )
    cores: float = Field(
        0.0, ge=0, description="Cores the capacity counts (0: the CPUs this process may use, capped by a cgroup CPU quota)."
    )
    margin: float = Field(
        default_of(CapacityConfig, "margin"), ge=0, lt=1, description="Share of the cores kept free: usable cores = cores × (1 − margin)."
    )
    window_seconds: float = Field(
        default_of(CapacityConfig, "window_seconds"), gt=0, description="Wall time over which the load (model CPU-seconds per second) is measured."
    )
    prior_cost_per_audio_second: float = Field(
        default_of(CapacityConfig, "prior_cost"),
        gt=0,
        description="CPU-seconds per second of audio assumed for a voice not yet measured (about 2× embedded "
        "Piper's cost on one core; raise it when the default voice is RVC on the CPU).",
    )
    warmup_audio_seconds: float = Field(
        default_of(CapacityConfig, "warmup_audio_seconds"), ge=0, description="Audio a voice must have made before its measured cost replaces the prior."
    )
    cost_half_life_audio_seconds: float = Field(
        default_of(CapacityConfig, "half_life_audio_seconds"), gt=0, description="A cost measurement weighs half once the voice has made this much newer audio."
    )


class AccessSettings(Section):
    """Who may connect: API keys, browser origins (bridge/auth.py)."""

    api_keys: CommaSeparated[SecretStr] = Field(
        default_factory=list,
        description="API keys, comma-separated; when set, /ws/stream and /api/speak need one "
        "(`Authorization: Bearer KEY` or `?token=KEY`).",
    )
    allowed_origins: CommaSeparated[str] = Field(
        default_factory=list,
        description="Browser origins allowed in (comma-separated, `*` for any); empty: same-origin "
        "pages and clients that send no Origin.",
    )
    metrics_auth: bool = Field(True, description="/metrics needs an API key too, when keys are set.")


class LimitSettings(Section):
    """Abuse limits of every surface (bridge/limits.py, bridge/session.py, bridge/server.py)."""

    max_message_bytes: int = Field(
        65536, ge=1024, description="Largest WebSocket message or HTTP body (beyond: close 1009 / HTTP 413)."
    )
    max_token_chars: int = Field(
        4096, ge=1, description="Longest token in one message (longer: error frame, token dropped)."
    )
    max_buffered_chars: int = Field(
        16384, ge=256, description="Text a session may hold waiting for synthesis (beyond: close 1008)."
    )
    max_message_rate: float = Field(200.0, gt=0, description="Messages per second a session may send, sustained.")
    message_burst: int = Field(
        1000, ge=1, description="Messages a session may send at once above that rate (beyond: close 1008)."
    )
    max_utterance_seconds: float = Field(
        300.0, gt=0, description="Audio one utterance may make; the rest is dropped with an error frame."
    )
    speak_max_seconds: float = Field(
        60.0, gt=0, description="Longest audio one /api/speak request returns (the WAV is built in memory)."
    )
    max_session_seconds: float = Field(3600.0, ge=0, description="Longest session, then close 1008 (0: no limit).")
    idle_timeout_seconds: float = Field(
        300.0, ge=0, description="Close a session (1000) silent this long both ways (0: never)."
    )
    max_connections_per_ip: int = Field(
        8,
        ge=0,
        description="Sessions (WebSocket and /api/speak) open at once from one address (0: no limit; "
        "loopback is not limited).",
    )
    trusted_proxies: CommaSeparated[str] = Field(
        default_factory=list,
        description="Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the client "
        "for the per-address limit and logs.",
    )
    send_stall_seconds: float = Field(
        30.0, gt=0, description="Close a client (1008) that has read nothing this long while audio waits for it."
    )
    socket_send_buffer_bytes: int = Field(
        131072, ge=0, description="Kernel send buffer per connection (SO_SNDBUF; 0: the OS default, up to megabytes)."
    )
    heartbeat_seconds: float = Field(
        20.0, ge=0, description="WebSocket ping interval; no pong within half of it drops the client (0: off)."
    )
    shutdown_timeout_seconds: float = Field(
        10.0, gt=0, description="On SIGTERM, time for in-flight work to finish before sessions close with 1001."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError: not an address or network
        return value


class RVCSettings(Section):
    """Voice conversion with RVC: the voices, content features, pitch, the stream's blocks (bridge/vc)."""

    model_config = ConfigDict(alias_generator=prefixed("rvc_"))

    content_model: Path | None = Field(
        None,
        description="HuBERT/ContentVec weights: fairseq hubert_base.pt or a Hugging Face directory "
        "(default: <models_dir>/hubert_base.pt, else <models_dir>/hubert_base/).",
    )
    pitch_method: Literal["auto", "rmvpe", "parselmouth"] = Field(
        "auto",
        description="Pitch estimator: 'rmvpe' (<models_dir>/rmvpe.pt) or 'parselmouth' (Praat, no weights, "
        "~0.2 RTF cheaper on a CPU). auto: rmvpe on CUDA, parselmouth on the CPU.",
    )
    pitch_fallback: bool = Field(
        True,
        description="When rmvpe.pt is missing, warn and use parselmouth instead of failing.",
    )
    default_voice: str | None = Field(None, alias="default_voice", description="RVC voice for sessions that name none.")
    voices_dir: Path | None = Field(
        None, description="Voice folders, one per voice (<name>/*.pth + optional *.index); default <models_dir>/voices."
    )
    index_rate: float = Field(
        0.75, ge=0, le=1, description="Feature retrieval strength (0: ignore the voice's .index)."
    )
    protect: float = Field(
        0.33, ge=0, le=0.5, description="Keep this much of the raw features on voiceless frames (0.5: off)."
    )
    rms_mix_rate: float = Field(
        0.25, ge=0, le=1, description="Output loudness: 0 follows the input's envelope, 1 keeps the model's."
    )
    require_index: bool = Field(False, description="Refuse voices that have no .index file.")
    speaker_id: int = Field(0, ge=0, description="Speaker of multi-speaker voices.")
    noise_scale: float = Field(
        0.66666, ge=0, description="Prior noise of the synthesizer (RVC: 0.66666; 0: deterministic)."
    )
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto",
        description="auto: fp16 on CUDA; on the CPU bf16 autocast where the CPU has AVX512-BF16 or "
        "AMX (about 2x faster, slightly lower fidelity), else fp32.",
    )
    threads: int = Field(0, ge=0, description="torch intra-op threads on the CPU (0: torch's default).")
    device_concurrency: int = Field(
        1, ge=1, description="Conversion blocks run at once per device (1 is fastest on a CPU)."
    )
    voice_cache: int = Field(4, ge=1, description="Voices kept loaded per device (least recently used go).")
    fold_weight_norm: bool = Field(True, description="Fold weight norm into plain weights after loading (faster).")
    block_seconds: float | None = Field(
        None,
        ge=0.02,
        le=10,
        description="Streaming block: audio converted per model call (rounded to 20 ms). Empty: 0.5 on "
        "CUDA, 2.0 on the CPU (larger blocks amortise the context; real time on 2 cores).",
    )
    first_block_seconds: float | None = Field(
        None,
        ge=0,
        le=10,
        description="First block of an utterance (sooner first audio); later blocks grow to "
        "rvc_block_seconds. Empty: 0.24 on CUDA, 0.6 on the CPU. 0: every block rvc_block_seconds.",
    )
    block_step_seconds: float = Field(
        0.2,
        ge=0.02,
        le=10,
        description="Blocks come in multiples of this (besides the first and the full block): each new "
        "size costs a one-off kernel set-up on its first call (0.5-1.5 s on a CPU in bf16), so few sizes "
        "keep that out of the stream. 0.02: any size.",
    )
    warm_block_sizes: Literal["auto", "all", "edges"] = Field(
        "auto",
        description="Block sizes run once at start-up: edges (the first and the full block), all (every "
        "size the stream uses: no set-up cost mid-stream, a longer start-up), auto: all where kernels "
        "are set up per size (bf16 on the CPU), else edges.",
    )
    paced_blocks: bool = Field(
        True,
        description="Size each block after the first from the audio the listener still has and the "
        "measured conversion speed (no gaps while blocks grow); off: double each time.",
    )
    crossfade_seconds: float = Field(
        0.04, ge=0, le=0.5, description="Crossfade between consecutive blocks (SOLA, sin²), rounded to 10 ms."
    )
    context_seconds: float | None = Field(
        None,
        ge=0,
        le=10,
        description="Left context converted with each block (more: better, slower; RVC: 2.5). Empty: 1.0 on "
        "CUDA, 0.5 on the CPU.",
    )
    lookahead_seconds: float = Field(
        0.04, ge=0, le=1, description="Right context each block waits for (adds latency, smooths joins)."
    )
    start_context_seconds: float | None = Field(
        0.1,
        ge=0,
        le=10,
        description="Silence before an utterance converted as the first blocks' left context (less: a "
        "cheaper first block, sooner first audio). Empty: all of rvc_context_seconds, as RVC's realtime GUI.",
    )

    def voices_folder(self, models_dir: Path) -> Path:
        """The folder of voice folders: ``voices_dir``, else ``<models_dir>/voices``."""
        return self.voices_dir or models_dir / "voices"


class Settings(BaseSettings):
    """Every knob of the bridge, one section a stage. See the README's configuration table."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)

    server: ServerSettings = Field(default_factory=ServerSettings)
    engines: EngineSettings = Field(default_factory=EngineSettings)
    piper: PiperSettings = Field(default_factory=PiperSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    soprano: SopranoSettings = Field(default_factory=SopranoSettings)
    segmenter: SegmenterSettings = Field(default_factory=SegmenterSettings)
    normalize: NormalizeSettings = Field(default_factory=NormalizeSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    wyoming: WyomingSettings = Field(default_factory=WyomingSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    rvc: RVCSettings = Field(default_factory=RVCSettings)

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: Any) -> Any:
        """Flat names (``rvc_index_rate=0.5``, from every source) into their sections."""
        return nest_flat(cls, data) if isinstance(data, dict) else data

    def unchecked(self, **overrides: Any) -> Settings:
        """A copy with ``overrides`` (flat names, or whole sections) set as given, unvalidated:
        for tests and benchmarks that need a value outside a documented range."""
        flat = flatten_sections(type(self), overrides)
        unknown = sorted(set(flat) - set(flat_fields(type(self))))
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        nested = nest_flat(type(self), flat)
        return self.model_copy(update={name: getattr(self, name).model_copy(update=values) for name, values in nested.items()})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        flat = flat_model(settings_cls)
        return (
            FlatInitSource(settings_cls, init_settings),
            EnvSettingsSource(flat, env_prefix=ENV_PREFIX, env_parse_none_str=""),
            TomlSource(flat, config_file_path()),
        )


def setting_help(flat: str) -> str:
    """A setting's description (its README text), for a CLI option that sets it."""
    return flat_fields(Settings)[flat][2].description or ""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and config file, with explicit overrides (None = unset)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def settings_markdown() -> str:
    """The README's configuration table, generated from the fields above (a test keeps them equal)."""
    return settings_table(flat_model(Settings), ENV_PREFIX)


def readme_with_settings(readme: str) -> str:
    """``readme`` with the text between the settings markers replaced by the current table."""
    return replace_block(readme, README_BEGIN, README_END, settings_markdown())


if __name__ == "__main__":  # python -m bridge.config [--update-readme README.md]
    table_cli(sys.argv[1:], settings_markdown, readme_with_settings)
